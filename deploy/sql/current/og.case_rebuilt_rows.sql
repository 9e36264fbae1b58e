-- og.case_rebuilt_rows(): the rows of og.case_rebuilt, read with its owner's rights, for
-- audit.projection_differences. A view reads its tables with its owner's rights, but the
-- functions it calls run as the one who reads it, and the planner inlines og.case_rebuilt's
-- (og.decision_case, og.case_opening) by parsing their bodies as that reader: one names
-- og.case_stage, in schema og, which an auditor may not use ("permission denied for schema
-- og"). The auditor's view reads the rebuilt projection whole (materialized) anyway.

CREATE OR REPLACE FUNCTION og.case_rebuilt_rows() RETURNS SETOF og.case_rebuilt
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp AS $$
  SELECT * FROM og.case_rebuilt
$$;

REVOKE ALL ON FUNCTION og.case_rebuilt_rows() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION og.case_rebuilt_rows() TO onegrid_auditor;
