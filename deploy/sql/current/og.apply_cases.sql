-- og.apply_cases(ledger_id[], p_decision[], p_evaluation[]): moves existing cases by one
-- decision each, with one UPDATE: for each element, the case p_decision[i] names (its
-- detail as the ledger keeps it) gets the columns the decision sets (og.decision_case),
-- its updated_at (now()) and last_ledger_id (ledger_id[i], the event's), and the facts the
-- auditor's views read (first_resolved_at ... last_evaluation, migration 020) moved on by
-- that decision (og.decision_facts) and, when the event stored with it on this case is an
-- evaluation, by that event (p_evaluation[i], its detail; else NULL).
-- og.case_facts_rebuilt derives the same facts from the ledger.
--
-- The callers name each case at most once per call (two decisions on one case must be
-- applied in their order, one call after the other). Returns the number of cases moved: a
-- decision on a case that does not exist moves nothing, and the caller says what that
-- means (og.apply_case and og.store_moved raise SQLSTATE OG002). Planned once per session
-- (force_generic_plan), as og.store_opened is.
--
-- How a decision moves a case is said here once: og.apply_case (og.store_event,
-- og.store_decision) calls it for one case, og.store_moved for the cases of a batch.

DROP FUNCTION IF EXISTS og.apply_cases(text[], jsonb[], bigint[], jsonb[], jsonb[]);

CREATE OR REPLACE FUNCTION og.apply_cases(p_ledger_id bigint[], p_decision jsonb[],
                                          p_evaluation jsonb[])
  RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
  moved bigint;
BEGIN
  UPDATE og.case c SET state = m.state, unit_code = m.unit_code, rule_id = m.rule_id,
                       rule_version = m.rule_version, deadline_at = m.deadline_at,
                       closed_at = m.closed_at, contacts = m.contacts,
                       escalation_level = m.escalation_level,
                       supervisor_unit = m.supervisor_unit, severity = m.severity,
                       paused_at = m.paused_at, extension_days = m.extension_days,
                       returned_units = m.returned_units, stage = m.stage, clock = m.clock,
                       clock_started_at = m.clock_started_at,
                       extension_lapsed_at = m.extension_lapsed_at,
                       lapsed_paused_at = m.lapsed_paused_at,
                       lapsed_paused_deadline_at = m.lapsed_paused_deadline_at,
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
    FROM unnest(p_ledger_id, p_decision, p_evaluation) AS a(ledger_id, decision, evaluation),
         LATERAL og.decision_case(a.decision) m,
         LATERAL og.decision_facts(a.decision) f
   WHERE c.case_id = m.case_id;
  GET DIAGNOSTICS moved = ROW_COUNT;
  RETURN moved;
END $$;

REVOKE ALL ON FUNCTION og.apply_cases(bigint[], jsonb[], jsonb[]) FROM PUBLIC;
