-- og.database_identity(): what tells this database from a copy of it, or from itself at
-- another point of its history (og.database_generation, migration 028): the cluster's
-- system identifier (initdb gives each cluster its own; a restore into a new cluster
-- changes it), the database's OID (a restore into a new database), and the timeline of
-- the WAL being written (a point-in-time recovery or a promoted standby starts a new
-- one). pg_walfile_name names the timeline WAL is written on; the last checkpoint's
-- (pg_control_checkpoint) still names the old one for a while after a promotion. On a
-- standby (recovery in progress) it fails: nothing of onegrid's can write there anyway.

CREATE OR REPLACE FUNCTION og.database_identity(
  OUT system_identifier bigint, OUT database_oid oid, OUT timeline integer)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT c.system_identifier,
         (SELECT d.oid FROM pg_database d WHERE d.datname = current_database()),
         ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::integer
    FROM pg_control_system() c
$$;

REVOKE ALL ON FUNCTION og.database_identity() FROM PUBLIC;
