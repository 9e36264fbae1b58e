-- 017: every SECURITY DEFINER function searches pg_temp last. With `SET search_path =
-- pg_catalog, og` PostgreSQL still searches the caller's temporary schema *first* for
-- tables and views (it is searched first unless named), so a login allowed to create
-- temporary tables could shadow a relation an owner's function names without a schema.
-- Naming pg_temp last closes that (PostgreSQL's documentation, "Writing SECURITY DEFINER
-- Functions Safely"). Functions created by later migrations name it themselves;
-- tests/integration/roles.sh checks that none is left without it.
DO $$
DECLARE
  f regprocedure;
BEGIN
  FOR f IN SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
             JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
            WHERE p.prosecdef AND n.nspname IN ('og', 'audit', 'feed')
  LOOP
    EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, og, pg_temp', f);
  END LOOP;
END $$;
