-- 028: a database restored from a backup, or a standby promoted in its place, has gone
-- back in time: what was stored after the backup (or not yet replicated) is not in it,
-- and its counters stand where they stood then. Left as they were, they give again what
-- had been given and acknowledged: case numbers (a unit's status update then acts on
-- another case), the feed's seq (a reader that had read further skips the new rows), the
-- fencing epochs (a dispatch that loaded the newer state, still running, holds an epoch
-- the database gives out again: its stale decisions are then committed), ledger, batch
-- and rejection ids (an auditor's extract names another row). An operator's trial
-- reproduced each.
-- og.database_generation records the database's identity (og.database_identity: the
-- cluster's system identifier, the database's OID, the WAL timeline): a restore into a
-- new database or cluster, a point-in-time recovery and a promotion each change it.
-- dispatch and archive call og.generation_check() on every connection; on a new identity
-- it opens a new generation (og.new_generation): every counter above moves past anything
-- the lost time can have given, and a dispatch that outlived the change exits to reload.
-- A restore that keeps the identity (a file-system snapshot of the data directory put
-- back, a backup taken before this migration) is told by the operator: SELECT
-- og.new_generation('why') (docs/operating.md, "Backups and restores").
SET LOCAL ROLE onegrid_owner;

CREATE TABLE og.database_generation (
  generation        integer PRIMARY KEY,
  system_identifier bigint NOT NULL,
  database_oid      oid NOT NULL,
  timeline          integer NOT NULL,
  began_at          timestamptz NOT NULL DEFAULT now(),
  why               text NOT NULL,
  -- what the new generation moved, each counter from and to (NULL for the first);
  -- dispatch numbers every district's cases above the highest 'case_number' moved to
  moved             jsonb
);
COMMENT ON TABLE og.database_generation IS
  'the database''s identity, and each restore or promotion found since (og.generation_check)';

--@current og.refuse_change
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON og.database_generation
  FOR EACH ROW EXECUTE FUNCTION og.refuse_change();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON og.database_generation
  FOR EACH STATEMENT EXECUTE FUNCTION og.refuse_change();

-- The first: this database as it is now.
--@current og.database_identity
INSERT INTO og.database_generation (generation, system_identifier, database_oid, timeline, why)
  SELECT 1, i.system_identifier, i.database_oid, i.timeline, 'migration 028'
    FROM og.database_identity() i;

-- A database restored from a backup taken before this migration has no generation of
-- its own to compare: this one takes it as it is. Said, when it holds a record already.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM og.batch) THEN
    RAISE WARNING 'database generations begin here (migration 028); if this database was '
      'restored from a backup, run SELECT og.new_generation(''restored from a backup taken '
      'before migration 028'') before starting onegrid (docs/operating.md, "Backups and restores")';
  END IF;
END $$;

GRANT SELECT ON og.database_generation TO onegrid_reader, onegrid_writer;
