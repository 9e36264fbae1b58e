-- audit.database_generations (数据库代次): the database's identity when onegrid was
-- installed, then each time it was found restored from a backup or replaced by a promoted
-- standby (og.generation_check), or said to be by an operator (og.new_generation): when,
-- why, and how far the counters were moved (case numbers, the feed's seq, ledger, batch and
-- rejection ids, fencing epochs) so that nothing given in the lost time is given again.
-- A generation after the first means the record may lack what was stored after the backup:
-- chain heads kept from that time (audit verify --expect-heads) no longer match.

CREATE OR REPLACE VIEW audit.database_generations AS
  SELECT generation, began_at, why, system_identifier, database_oid, timeline, moved
    FROM og.database_generation;

CREATE OR REPLACE VIEW audit."数据库代次" AS SELECT * FROM audit.database_generations;
COMMENT ON VIEW audit.database_generations IS
  '数据库代次: the database''s identity, and each restore or promotion found since';
GRANT SELECT ON audit.database_generations, audit."数据库代次" TO onegrid_auditor;
