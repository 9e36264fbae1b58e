-- 019: every object is owned by onegrid_owner, as 001 says. Migrations 014, 016 and 018
-- left out `SET LOCAL ROLE onegrid_owner`, so what they created belonged to whoever ran
-- `onegridctl migrate` (the superuser). That broke more than a rule: og.store_event runs
-- with onegrid_owner's rights and could not call og.stored_outcome (EXECUTE revoked from
-- PUBLIC), so the first duplicate event key that reached archive failed with 42501 and
-- archive held its batch for ever (a fault, rightly never blamed on the record).
-- tests/integration/roles.sh checks that nothing in og, audit and feed has another owner.
DO $$
DECLARE
  o record;
BEGIN
  FOR o IN
    SELECT format('ALTER FUNCTION %s OWNER TO onegrid_owner', p.oid::regprocedure) AS ddl
      FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname IN ('og', 'audit', 'feed')
       AND pg_catalog.pg_get_userbyid(p.proowner) <> 'onegrid_owner'
    UNION ALL
    SELECT format('ALTER %s %I.%I OWNER TO onegrid_owner',
                  CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                 WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
                  n.nspname, c.relname)
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname IN ('og', 'audit', 'feed') AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
       AND pg_catalog.pg_get_userbyid(c.relowner) <> 'onegrid_owner'
       AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                                             WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')))
  LOOP
    EXECUTE o.ddl;
  END LOOP;
END $$;
