-- 030: dispatch's start reads what it keeps, not the whole record. Its start-up queries
-- (og_cases_load in daemons/dispatch/cases.c) read every case of its shard twice: for the
-- districts' highest case numbers, and for the cases still open; and, as the plan fell,
-- every report for the reports merged into those. At a million cases, 50,000 open, the
-- load took 2.2 s of its 2.5 s start, growing with the closed cases, which dispatch does
-- not keep. These indexes let each query read what it returns:
--   case_number    each district's highest number, read from the end of its range. The
--                  expression is NULL for an id that is not "DISTRICT-NUMBER" (none that
--                  dispatch makes), so that no case can be refused for its id;
--                  cases.c's load_numbers spells it the same way, or the planner does not
--                  match it;
--   case_open      the cases not final (stage, which dispatch sets: og.case_stage);
--   case_report_merged
--                  the merged reports: few, against one report row per case.
SET LOCAL ROLE onegrid_owner;

CREATE INDEX case_number ON og.case
  (shard, district_code,
   (CASE WHEN starts_with(case_id, district_code || '-')
              AND substr(case_id, length(district_code) + 2) ~ '^[0-9]{1,18}$'
         THEN substr(case_id, length(district_code) + 2)::bigint END));
CREATE INDEX case_open ON og.case (shard) WHERE stage <> 'final';
CREATE INDEX case_report_merged ON og.case_report (case_id) WHERE joined = 'merged';
