-- 027: only onegrid's owner makes temporary tables in onegrid's database. PostgreSQL lets
-- every role (PUBLIC) make them in any database it may connect to, so an auditor's or a
-- feed subscriber's login, meant to read only, could write without bound into the
-- database's disk (temporary tables are files beside onegrid's own, on the same volume):
-- a full disk stops archive's commits, and every publisher then waits. Now the privilege
-- is onegrid_owner's (018 granted it), which `onegridctl registry import` uses; the
-- daemons' and the readers' logins never make one. The same for creating objects in
-- schema public, which PostgreSQL 15 no longer gives PUBLIC in a new database but a
-- database restored or upgraded from an older release may still give.
-- (A query's own temporary files, for a sort or hash larger than work_mem, need no
-- privilege: the server's temp_file_limit bounds them; docs/operating.md.)
DO $$
BEGIN
  EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
  IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'public') THEN
    REVOKE CREATE ON SCHEMA public FROM PUBLIC;
  END IF;
  -- REVOKE takes only what its role (the owner, for a superuser) granted, and from a role
  -- that is neither the database's owner nor a superuser it takes nothing (a warning, not
  -- an error): say so instead of leaving the grant unnoticed.
  IF has_database_privilege('public', current_database(), 'TEMPORARY') THEN
    RAISE EXCEPTION 'PUBLIC may still make temporary tables in database %', current_database()
      USING HINT = 'Run onegridctl migrate as the database''s owner or a superuser; a grant another '
                   'role made stays until that role revokes it (\l+ shows who granted what).';
  END IF;
END $$;
