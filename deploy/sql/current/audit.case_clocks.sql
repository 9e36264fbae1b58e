-- audit.case_clocks (案件时钟): the clock of every open case: green under 80 % of its time
-- limit, yellow up to 100 %, red past the deadline; 'paused' while an extension request is
-- pending.

CREATE OR REPLACE VIEW audit.case_clocks AS
  SELECT case_id, district_code, unit_code, state, opened_at, deadline_at, escalation_level,
         CASE WHEN deadline_at IS NULL THEN NULL
              WHEN paused_at IS NOT NULL THEN 'paused'
              WHEN now() >= deadline_at THEN 'red'
              WHEN now() >= opened_at + (deadline_at - opened_at) * 0.8 THEN 'yellow'
              ELSE 'green' END AS colour,
         paused_at
    FROM og.case
   WHERE state NOT IN ('resolved', 'checked', 'closed', 'evaluated', 'voided');

CREATE OR REPLACE VIEW audit."案件时钟" AS SELECT * FROM audit.case_clocks;
COMMENT ON VIEW audit.case_clocks IS '案件时钟: green / yellow / red clock of every open case';
GRANT SELECT ON audit.case_clocks, audit."案件时钟" TO onegrid_auditor;
