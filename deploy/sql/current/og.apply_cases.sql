-- og.apply_cases(case_id[], p_case[], ledger_id[], p_decision[], p_evaluation[]): moves
-- existing cases by one decision each, with one UPDATE: for each element, the case
-- case_id[i] gets the case columns its decision carries (p_case[i], absolute values: see
-- og.store_event), its updated_at (now()) and last_ledger_id (ledger_id[i]), and the facts
-- the auditor's views read (first_resolved_at ... last_evaluation, migration 020) moved on
-- by that decision (p_decision[i], its detail as stored in the ledger: og.decision_facts)
-- and, when the event stored with it on this case is an evaluation, by that event
-- (p_evaluation[i], its detail; else NULL). og.case_facts_rebuilt derives the same facts
-- from the ledger.
--
-- The callers name each case at most once per call (two decisions on one case must be
-- applied in their order, one call after the other). Returns the number of cases moved: a
-- case_id that names no case moves nothing, and the caller says what that means
-- (og.apply_case and og.store_moved raise SQLSTATE OG002). Planned once per session
-- (force_generic_plan), as og.store_opened is.
--
-- The one place that says how a decision moves a case: og.apply_case (og.store_event,
-- og.store_decision) calls it for one case, og.store_moved for the cases of a batch.

CREATE OR REPLACE FUNCTION og.apply_cases(p_case_id text[], p_case jsonb[], p_ledger_id bigint[],
                                          p_decision jsonb[], p_evaluation jsonb[])
  RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
  moved bigint;
BEGIN
  UPDATE og.case c SET state = r.state, unit_code = r.unit_code, rule_id = r.rule_id,
                       rule_version = r.rule_version, deadline_at = r.deadline_at,
                       closed_at = r.closed_at, contacts = coalesce(r.contacts, c.contacts),
                       escalation_level = coalesce(r.escalation_level, 0),
                       supervisor_unit = r.supervisor_unit, severity = r.severity,
                       paused_at = r.paused_at, extension_days = r.extension_days,
                       returned_units = coalesce(r.returned_units, '{}'),
                       stage = coalesce(r.stage, og.case_stage(r.state)),
                       clock = coalesce(r.clock, og.case_clock(og.case_stage(r.state), r.deadline_at,
                                                                r.paused_at)),
                       updated_at = now(), last_ledger_id = a.ledger_id,
                       first_resolved_at = coalesce(c.first_resolved_at, f.resolved_at),
                       deadline_when_resolved = CASE WHEN c.first_resolved_at IS NULL
                                                     THEN f.resolved_deadline
                                                     ELSE c.deadline_when_resolved END,
                       first_closed_at = coalesce(c.first_closed_at, f.closed_at),
                       deadline_when_closed = CASE WHEN c.first_closed_at IS NULL
                                                   THEN f.closed_deadline
                                                   ELSE c.deadline_when_closed END,
                       returned = c.returned OR f.returned,
                       reworks = c.reworks + f.reworks,
                       last_evaluation = CASE WHEN a.evaluation IS NULL THEN c.last_evaluation
                                              ELSE a.evaluation #>> '{evaluation,result}' END
    FROM unnest(p_case_id, p_case, p_ledger_id, p_decision, p_evaluation)
           AS a(case_id, c, ledger_id, decision, evaluation),
         LATERAL jsonb_populate_record(NULL::og.case, a.c) r,
         LATERAL og.decision_facts(a.decision) f
   WHERE c.case_id = a.case_id;
  GET DIAGNOSTICS moved = ROW_COUNT;
  RETURN moved;
END $$;

REVOKE ALL ON FUNCTION og.apply_cases(text[], jsonb[], bigint[], jsonb[], jsonb[]) FROM PUBLIC;
