-- audit.report_projection_differences: reports whose live row (og.case_report, what
-- audit.case_reports shows) differs from the one rebuilt from the ledger
-- (og.case_report_rebuilt); expected: none. side 'ledger' is the rebuilt row, 'live' the
-- row in og.case_report. With audit.projection_differences (the cases), the projection
-- check: `onegridctl rebuild-cases` reads both.

CREATE OR REPLACE VIEW audit.report_projection_differences AS
  WITH r AS MATERIALIZED (SELECT * FROM og.case_report_rebuilt_rows())
  (SELECT 'ledger' AS side, * FROM (SELECT * FROM r EXCEPT SELECT * FROM og.case_report) a)
  UNION ALL
  (SELECT 'live', * FROM (SELECT * FROM og.case_report EXCEPT SELECT * FROM r) b);

GRANT SELECT ON audit.report_projection_differences TO onegrid_auditor;
