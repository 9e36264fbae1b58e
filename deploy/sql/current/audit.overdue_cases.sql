-- audit.overdue_cases (超期未处置案件): open cases whose clock runs and is past their
-- deadline (audit.case_facts.overdue), oldest deadline first. A case whose clock is paused
-- (an extension request pending) is not overdue: dispatch does not escalate it either.

CREATE OR REPLACE VIEW audit.overdue_cases AS
  SELECT case_id, district_code, street_code, community_code, unit_code, category_code, state,
         opened_at, deadline_at, now() - deadline_at AS overdue_by
    FROM audit.case_facts
   WHERE overdue
   ORDER BY deadline_at;

CREATE OR REPLACE VIEW audit."超期未处置案件" AS SELECT * FROM audit.overdue_cases;
COMMENT ON VIEW audit.overdue_cases IS '超期未处置案件: open cases past their deadline, their clock running';
GRANT SELECT ON audit.overdue_cases, audit."超期未处置案件" TO onegrid_auditor;
