-- og.decision_case(decision): the og.case columns a decision of dispatch sets, from the
-- decision's detail as the ledger keeps it (the Decision rendered as JSON: a field at its
-- default value is absent). The one mapping from a decision to its case: archive's
-- storage (og.apply_cases, og.open_cases) and the projection rebuilt from the ledger
-- (og.case_rebuilt) both read it, so a case column a decision carries is named here once.
--
-- Every decision carries the case's absolute state, so these columns are the case's after
-- it. Not here: the columns a case takes when it is opened (og.case_opening), updated_at
-- and last_ledger_id (when and by which event it was stored), and the auditor's facts
-- (og.decision_facts, og.case_facts_rebuilt).
--   case_id, state              the decision's
--   unit_code, supervisor_unit  "unit", "supervisor" (NULL: none)
--   rule_id, rule_version       the routing rule (NULL: none, e.g. a case held by the
--                               district's dispatch desk)
--   deadline_at, closed_at      "deadline", "closed"
--   contacts                    how many reports the case holds (最多跑一次), at least 1
--   escalation_level            0 to 3
--   severity                    1 to 4, NULL for none
--   paused_at, extension_days   an extension request pending since paused_at, for
--                               extension_days working days (NULL when none is pending)
--   returned_units              the units that returned the case (退回)
--   stage, clock                dispatch's conclusions (migration 023); a decision of a
--                               dispatch older than 023 does not carry them, and means
--                               what og.case_stage and og.case_clock say
--   clock_started_at            "clock_started": when the current clock started
--                               (migration 025; NULL: no clock, or an older decision)
--   extension_lapsed_at         "extension_lapsed": when its last extension request
--                               lapsed undecided (migration 025; NULL: none did)
--   lapsed_paused_at,           "lapsed_paused_at", "lapsed_paused_deadline": when that
--   lapsed_paused_deadline_at   request paused the clock, and the deadline it paused
--                               (migration 029; NULL: none lapsed, or an older decision)
-- SQL, set-returning, not SECURITY DEFINER: the planner inlines it into the statement that
-- calls it in FROM.

-- Its result gained clock_started_at and extension_lapsed_at (025), lapsed_paused_at and
-- lapsed_paused_deadline_at (029): dropped and made again, with the views that read it
-- (og.case_rebuilt, and what reads that), which migrate makes again.
DROP FUNCTION IF EXISTS og.decision_case(jsonb) CASCADE;

CREATE OR REPLACE FUNCTION og.decision_case(d jsonb)
  RETURNS TABLE (case_id text, state text, unit_code text, rule_id bigint, rule_version integer,
                 deadline_at timestamptz, closed_at timestamptz, contacts integer,
                 escalation_level integer, supervisor_unit text, severity integer,
                 paused_at timestamptz, extension_days integer, returned_units text[],
                 stage text, clock text, clock_started_at timestamptz,
                 extension_lapsed_at timestamptz, lapsed_paused_at timestamptz,
                 lapsed_paused_deadline_at timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT d ->> 'case_id', d ->> 'state', d ->> 'unit', (d ->> 'rule_id')::bigint,
         CASE WHEN d ? 'rule_id' THEN (d ->> 'rule_version')::integer END,
         (d ->> 'deadline')::timestamptz, (d ->> 'closed')::timestamptz,
         CASE WHEN (d ->> 'contacts')::integer > 0 THEN (d ->> 'contacts')::integer ELSE 1 END,
         coalesce((d ->> 'escalation_level')::integer, 0), d ->> 'supervisor',
         (d ->> 'severity')::integer, (d ->> 'paused_at')::timestamptz,
         CASE WHEN d ? 'paused_at' THEN (d ->> 'extension_days')::integer END,
         ARRAY(SELECT jsonb_array_elements_text(coalesce(d -> 'returned_units', '[]'::jsonb))),
         coalesce(d ->> 'stage', og.case_stage(d ->> 'state')),
         coalesce(d ->> 'clock', og.case_clock(og.case_stage(d ->> 'state'),
                                                (d ->> 'deadline')::timestamptz,
                                                (d ->> 'paused_at')::timestamptz)),
         (d ->> 'clock_started')::timestamptz, (d ->> 'extension_lapsed')::timestamptz,
         (d ->> 'lapsed_paused_at')::timestamptz, (d ->> 'lapsed_paused_deadline')::timestamptz
$$;
