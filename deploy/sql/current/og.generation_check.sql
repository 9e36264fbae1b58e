-- og.generation_check(): the database's generation (og.database_generation, migration
-- 028), after opening a new one (og.new_generation) when the database's identity
-- (og.database_identity) is not the one its last generation recorded: a restore into a
-- new cluster or a new database, a point-in-time recovery, a standby promoted. Each means
-- the database may have gone back in time (or moved, or was upgraded: nothing lost, the
-- counters move anyway). dispatch and archive call it on every connection, before either
-- stores anything; a dispatch that finds a generation other than the one it loaded its
-- cases in exits to load them again.

CREATE OR REPLACE FUNCTION og.generation_check() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp AS $$
DECLARE
  last og.database_generation;
  now_ record := og.database_identity();
BEGIN
  FOR i IN 1 .. 2 LOOP
    SELECT * INTO last FROM og.database_generation ORDER BY generation DESC LIMIT 1;
    IF (last.system_identifier, last.database_oid, last.timeline)
       = (now_.system_identifier, now_.database_oid, now_.timeline) THEN
      RETURN last.generation;
    END IF;
    -- Another caller may be opening it: look again under the lock og.new_generation takes.
    LOCK TABLE og.database_generation IN EXCLUSIVE MODE;
  END LOOP;
  RETURN og.new_generation(format(
    'the database''s identity changed (%s): restored from a backup, a standby promoted, or moved or upgraded',
    concat_ws(', ',
              CASE WHEN last.system_identifier <> now_.system_identifier
                   THEN format('cluster %s, was %s', now_.system_identifier, last.system_identifier) END,
              CASE WHEN last.database_oid <> now_.database_oid
                   THEN format('database OID %s, was %s', now_.database_oid, last.database_oid) END,
              CASE WHEN last.timeline <> now_.timeline
                   THEN format('timeline %s, was %s', now_.timeline, last.timeline) END)));
END $$;

REVOKE ALL ON FUNCTION og.generation_check() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION og.generation_check() TO onegrid_reader, onegrid_writer;
