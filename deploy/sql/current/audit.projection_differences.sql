-- audit.projection_differences: cases whose live projection (og.case) differs from the one
-- rebuilt from the ledger (og.case_rebuilt); expected: none. side 'ledger' is the rebuilt
-- row, 'live' the row in og.case. `SELECT *`: re-applied whenever og.case or
-- og.case_rebuilt gains a column (migrate re-applies every current definition after a
-- versioned migration). The rebuilt projection is computed once (it reads the whole
-- ledger), not once for each side, with the owner's rights (og.case_rebuilt_rows).

CREATE OR REPLACE VIEW audit.projection_differences AS
  WITH r AS MATERIALIZED (SELECT * FROM og.case_rebuilt_rows())
  (SELECT 'ledger' AS side, * FROM (SELECT * FROM r EXCEPT SELECT * FROM og.case) a)
  UNION ALL
  (SELECT 'live', * FROM (SELECT * FROM og.case EXCEPT SELECT * FROM r) b);

GRANT SELECT ON audit.projection_differences TO onegrid_auditor;
