-- 020: the facts the auditor's KPIs are computed from, kept on og.case by the write path
-- (issue 11 item 4). Until now audit.case_facts derived them from og.ledger per case with
-- correlated subqueries over a materialised CTE: audit.kpi took 284 s at 20,000 cases and
-- grew with the square of their number. They are columns of the case now, set in the same
-- transaction as the ledger rows they come from (og.apply_case, og.store_event), rebuilt
-- from the ledger by og.case_facts_rebuilt (part of og.case_rebuilt, so the projection
-- check, audit.projection_differences, covers them):
--   first_resolved_at, deadline_when_resolved  the first decision that resolved the case:
--                                              dispatch's decision time and the deadline
--                                              then in force (按期处置)
--   first_closed_at, deadline_when_closed      likewise for the first that closed it (结案)
--   returned                                   ever returned (退回: state 'returned', or a
--                                              decision naming the unit that returned it)
--   reworks                                    how often reworked (resolved, then in
--                                              progress again; closed, then dispatched
--                                              again) (返工)
--   last_evaluation                            the result of the last evaluation (满意度)
-- The indexes serve the views' access paths: audit.kpi by level, code and month of
-- filing (the month in Asia/Shanghai, as the view computes it), audit.overdue_cases by
-- deadline among open cases whose clock runs.
-- The ledger itself is not changed.
SET LOCAL ROLE onegrid_owner;

ALTER TABLE og.case
  ADD COLUMN first_resolved_at      timestamptz,
  ADD COLUMN deadline_when_resolved timestamptz,
  ADD COLUMN first_closed_at        timestamptz,
  ADD COLUMN deadline_when_closed   timestamptz,
  ADD COLUMN returned               boolean NOT NULL DEFAULT false,
  ADD COLUMN reworks                integer NOT NULL DEFAULT 0,
  ADD COLUMN last_evaluation        text;

-- Existing cases: their facts from the ledger, by the rules og.case_facts_rebuilt states
-- (written out here, as they are today: a migration does not change when that view does).
-- The backfill changes no unit, state, deadline or supervisor: the feed has nothing to say.
ALTER TABLE og.case DISABLE TRIGGER feed;
UPDATE og.case c
   SET first_resolved_at = f.first_resolved_at, deadline_when_resolved = f.deadline_when_resolved,
       first_closed_at = f.first_closed_at, deadline_when_closed = f.deadline_when_closed,
       returned = f.returned, reworks = f.reworks, last_evaluation = f.last_evaluation
  FROM (SELECT l.case_id,
               (array_agg(coalesce((l.detail ->> 'decided')::timestamptz, l.recorded_at) ORDER BY l.ledger_id)
                  FILTER (WHERE l.kind = 'decision' AND l.detail ->> 'state' = 'resolved'))[1]
                 AS first_resolved_at,
               (array_agg((l.detail ->> 'deadline')::timestamptz ORDER BY l.ledger_id)
                  FILTER (WHERE l.kind = 'decision' AND l.detail ->> 'state' = 'resolved'))[1]
                 AS deadline_when_resolved,
               (array_agg(coalesce((l.detail ->> 'decided')::timestamptz, l.recorded_at) ORDER BY l.ledger_id)
                  FILTER (WHERE l.kind = 'decision' AND l.detail ->> 'state' = 'closed'))[1]
                 AS first_closed_at,
               (array_agg((l.detail ->> 'deadline')::timestamptz ORDER BY l.ledger_id)
                  FILTER (WHERE l.kind = 'decision' AND l.detail ->> 'state' = 'closed'))[1]
                 AS deadline_when_closed,
               coalesce(bool_or(l.detail ->> 'state' = 'returned' OR l.detail ->> 'returned_by' IS NOT NULL)
                          FILTER (WHERE l.kind = 'decision'), false) AS returned,
               (count(*) FILTER (WHERE l.kind = 'decision'
                                   AND ((l.detail ->> 'previous_state' = 'resolved' AND l.detail ->> 'state' = 'in_progress')
                                     OR (l.detail ->> 'previous_state' = 'closed' AND l.detail ->> 'state' = 'dispatched'))))::integer
                 AS reworks,
               (array_agg(l.detail #>> '{evaluation,result}' ORDER BY l.ledger_id DESC)
                  FILTER (WHERE l.kind = 'event' AND l.event_type = 'evaluation'))[1] AS last_evaluation
          FROM og.ledger l
         WHERE l.case_id IS NOT NULL
         GROUP BY l.case_id) f
 WHERE f.case_id = c.case_id;
ALTER TABLE og.case ENABLE TRIGGER feed;

CREATE INDEX case_district_month ON og.case
  (district_code, (date_trunc('month', opened_at AT TIME ZONE 'Asia/Shanghai')::date));
CREATE INDEX case_street_month ON og.case
  (left(area_code, 9), (date_trunc('month', opened_at AT TIME ZONE 'Asia/Shanghai')::date));
CREATE INDEX case_community_month ON og.case
  (left(area_code, 12), (date_trunc('month', opened_at AT TIME ZONE 'Asia/Shanghai')::date));
CREATE INDEX case_unit_month ON og.case
  (unit_code, (date_trunc('month', opened_at AT TIME ZONE 'Asia/Shanghai')::date));
CREATE INDEX case_overdue ON og.case (deadline_at)
  WHERE state NOT IN ('resolved', 'checked', 'closed', 'evaluated', 'voided') AND paused_at IS NULL;
