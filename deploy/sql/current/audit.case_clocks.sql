-- audit.case_clocks (案件时钟): the clock of every open case: green under 80 % of its time
-- limit, yellow up to 100 %, red past the deadline; 'paused' while an extension request is
-- pending. Open and the clock are dispatch's conclusions, og.case's stage ('handling')
-- and clock (migration 023). The time limit is measured from when the clock started
-- (clock_started_at, migration 025: routed, re-routed, reopened, given by a joint meeting;
-- an approved extension lengthens it), or from the filing for a case whose clock started
-- before 025.

CREATE OR REPLACE VIEW audit.case_clocks AS
  SELECT case_id, district_code, unit_code, state, opened_at, deadline_at, escalation_level,
         CASE WHEN clock = 'none' THEN NULL
              WHEN clock = 'paused' THEN 'paused'
              WHEN now() >= deadline_at THEN 'red'
              WHEN now() >= coalesce(clock_started_at, opened_at)
                            + (deadline_at - coalesce(clock_started_at, opened_at)) * 0.8
                THEN 'yellow'
              ELSE 'green' END AS colour,
         paused_at, clock_started_at
    FROM og.case
   WHERE stage = 'handling';

CREATE OR REPLACE VIEW audit."案件时钟" AS SELECT * FROM audit.case_clocks;
COMMENT ON VIEW audit.case_clocks IS '案件时钟: green / yellow / red clock of every open case';
GRANT SELECT ON audit.case_clocks, audit."案件时钟" TO onegrid_auditor;
