-- 030: dispatch's start reads what it keeps, not the whole record. Its start-up queries
-- (og_cases_load in daemons/dispatch/cases.c) read every case of its shard twice: for the
-- districts' highest case numbers, and for the cases still open; and, as the plan fell,
-- every report for the reports merged into those. At a million cases, 50,000 open, they
-- took 1.3 s in dispatch's new session, growing with the closed cases, which dispatch does
-- not keep (now 0.8 s, most of it the open cases' pages). These indexes let each query
-- read what it returns:
--   case_number    each district's highest number, read from the end of its range. The
--                  expression is NULL for an id that is not "DISTRICT-NUMBER" with at most
--                  18 digits (dispatch makes none: its numbers stay below 10^14 until the
--                  year 2286), so that no case can be refused for its id; cases.c's
--                  load_numbers spells it the same way, or the planner does not match it;
--   case_open      the cases not final (stage, which dispatch sets: og_lifecycle_stage;
--                  og.case_stage for rows it did not write);
--   case_report_joined_merged
--                  the merged reports: few, against one report row per case. (Not
--                  "case_report_merged": that is the function og.case_report_merged.)
SET LOCAL ROLE onegrid_owner;

CREATE INDEX case_number ON og.case
  (shard, district_code,
   (CASE WHEN starts_with(case_id, district_code || '-')
              AND substr(case_id, length(district_code) + 2) ~ '^[0-9]{1,18}$'
         THEN substr(case_id, length(district_code) + 2)::bigint END));
CREATE INDEX case_open ON og.case (shard) WHERE stage <> 'final';
CREATE INDEX case_report_joined_merged ON og.case_report (case_id) WHERE joined = 'merged';
