-- 027: what every login may do in onegrid's database beyond its grants. PostgreSQL gives
-- PUBLIC, every role, the rights below in any database it may connect to; a login meant
-- only to read (an auditor's, a feed subscriber's) could use each to stop archive storing
-- events or to write into the database (an auditor's trial, reproduced):
--   - temporary tables: files on the database's volume, without bound; a full disk stops
--     archive's commits;
--   - schema public: objects of its own (PostgreSQL 15 no longer gives this in a new
--     database; one restored or upgraded from an older release may still);
--   - large objects (lo_creat, lo_create, lo_from_bytea): data of its own, kept after it
--     logs out, in every backup, which it can grant to other logins;
--   - advisory locks (pg_advisory_lock and the like): a session that takes locks in a loop
--     fills the cluster's shared lock table, and then archive's next batch, and every new
--     connection, fails with "out of shared memory" until that session is killed.
-- Now temporary tables are onegrid_owner's (018 granted them; `registry import` stages its
-- files in them), large objects and advisory locks onegrid_owner's and the database
-- owner's (`onegridctl migrate` takes an advisory lock), and all of it the superuser's.
-- The daemons' and the readers' logins use none. The functions belong to the bootstrap
-- superuser: only a superuser can take them from PUBLIC; run as the database's owner,
-- this takes the rest and warns (docs/operating.md, "Upgrading").
-- (A query's own temporary files, for a sort or a hash larger than work_mem, need no
-- privilege: the server's temp_file_limit bounds them; NOTIFY needs none either. The
-- cluster's other databases, postgres and template1, give PUBLIC the same rights:
-- docs/operating.md, "Logins that only read".)
DO $$
DECLARE
  f regprocedure;
  owner text := (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database());
  super boolean := (SELECT rolsuper FROM pg_roles WHERE rolname = current_user);
  owner_super boolean := (SELECT r.rolsuper FROM pg_roles r JOIN pg_database d ON d.datdba = r.oid
                           WHERE d.datname = current_database());
BEGIN
  EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
  IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'public') THEN
    REVOKE CREATE ON SCHEMA public FROM PUBLIC;
  END IF;
  FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
            WHERE super AND p.pronamespace = 'pg_catalog'::regnamespace
              AND (p.proname ~ '^pg_(try_)?advisory_(xact_)?lock(_shared)?$'
                   OR p.proname IN ('lo_creat', 'lo_create', 'lo_from_bytea')) LOOP
    EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO onegrid_owner', f);
    -- and the database's owner, who may run migrate without being a superuser
    IF NOT owner_super THEN
      EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', f, owner);
    END IF;
  END LOOP;
  IF NOT super THEN
    RAISE WARNING 'PUBLIC may still make large objects and take advisory locks in database %: only a superuser can take that from it',
      current_database()
      USING HINT = 'As a superuser, run the statements docs/operating.md gives (Upgrading, migration 027).';
  END IF;
  -- REVOKE takes only what its role (the owner, for a superuser) granted, and from a role
  -- that is neither the database's owner nor a superuser it takes nothing (a warning, not
  -- an error): say so instead of leaving the grant unnoticed.
  IF has_database_privilege('public', current_database(), 'TEMPORARY')
     OR (super AND has_function_privilege('public', 'pg_catalog.pg_advisory_lock(bigint)', 'EXECUTE')) THEN
    RAISE EXCEPTION 'PUBLIC may still make temporary tables or take advisory locks in database %',
      current_database()
      USING HINT = 'Run onegridctl migrate as a superuser or the database''s owner; a grant another '
                   'role made stays until that role revokes it (\l+ and \df+ show who granted what).';
  END IF;
END $$;
