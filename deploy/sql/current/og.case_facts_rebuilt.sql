-- og.case_facts_rebuilt: per case named by a ledger row, from one pass over the ledger
-- (one GROUP BY): the facts og.case keeps for the auditor (first_resolved_at ...
-- last_evaluation, see deploy/sql/020_case_facts.sql), and where the decision that
-- opened the case and its last decision are (their ledger_id and recorded_at, the
-- ledger's key), from which og.case_rebuilt takes the rest of the case. og.open_cases and
-- og.apply_cases keep the same facts as each decision is stored; og.case_rebuilt (and so
-- audit.projection_differences) compares the two; migration 020 filled the columns of
-- existing cases by the same rules. Per case, from its decisions in ledger order:
--   first_resolved_at, deadline_when_resolved  the first decision in state 'resolved':
--                                              its decision time ("decided", else when it
--                                              was recorded) and its deadline
--   first_closed_at, deadline_when_closed      the first in state 'closed', likewise
--   returned                                   any decision in state 'returned' or naming
--                                              the unit that returned it (returned_by)
--   reworks                                    decisions from 'resolved' to 'in_progress'
--                                              and from 'closed' to 'dispatched'
--   last_evaluation                            the result of its last evaluation event
--   opened_ledger_id, opened_recorded_at       its first KIND_OPEN_CASE decision
--   last_ledger_id, last_recorded_at           its last decision
-- One pass, not one view per part joined by case_id: the planner cannot estimate how many
-- cases a GROUP BY of the ledger yields (autovacuum never analyses the partitioned parent),
-- and a join it thinks small re-aggregated the ledger once per case.

CREATE OR REPLACE VIEW og.case_facts_rebuilt AS
  SELECT l.case_id,
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
            FILTER (WHERE l.kind = 'event' AND l.event_type = 'evaluation'))[1] AS last_evaluation,
         min(l.ledger_id) FILTER (WHERE l.kind = 'decision' AND l.detail ->> 'kind' = 'KIND_OPEN_CASE')
           AS opened_ledger_id,
         (array_agg(l.recorded_at ORDER BY l.ledger_id)
            FILTER (WHERE l.kind = 'decision' AND l.detail ->> 'kind' = 'KIND_OPEN_CASE'))[1]
           AS opened_recorded_at,
         max(l.ledger_id) FILTER (WHERE l.kind = 'decision') AS last_ledger_id,
         (array_agg(l.recorded_at ORDER BY l.ledger_id DESC) FILTER (WHERE l.kind = 'decision'))[1]
           AS last_recorded_at
    FROM og.ledger l
   WHERE l.case_id IS NOT NULL
   GROUP BY l.case_id;
