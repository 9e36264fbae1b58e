-- og.case_report_rebuilt_rows(): the rows of og.case_report_rebuilt, read with its owner's
-- rights, for audit.report_projection_differences (the view calls og.case_opening,
-- og.case_report_merged and og.event_severity, in schema og, which an auditor may not use:
-- see og.case_rebuilt_rows).

CREATE OR REPLACE FUNCTION og.case_report_rebuilt_rows() RETURNS SETOF og.case_report_rebuilt
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp AS $$
  SELECT * FROM og.case_report_rebuilt
$$;

REVOKE ALL ON FUNCTION og.case_report_rebuilt_rows() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION og.case_report_rebuilt_rows() TO onegrid_auditor;
