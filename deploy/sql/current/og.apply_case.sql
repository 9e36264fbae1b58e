-- og.apply_case(case_id, p_case, ledger_id, p_decision, p_evaluation): sets the case
-- columns a decision carries (p_case, absolute values: see og.store_event) on an existing
-- case, its updated_at and last_ledger_id, and moves on the facts the auditor's views read
-- (first_resolved_at ... last_evaluation, migration 020) by that decision (p_decision, its
-- detail as stored in the ledger: og.decision_facts) and, when the event stored with it
-- on this case is an evaluation, by that event (p_evaluation, its detail; else NULL).
-- og.case_facts_rebuilt derives the same facts from the ledger. SQLSTATE OG002 when the
-- case does not exist. Called by og.store_event and og.store_decision.

DROP FUNCTION IF EXISTS og.apply_case(text, jsonb, bigint);

CREATE OR REPLACE FUNCTION og.apply_case(cid text, p_case jsonb, p_ledger_id bigint,
                                         p_decision jsonb, p_evaluation jsonb) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp AS $$
DECLARE
  r og.case := jsonb_populate_record(NULL::og.case, p_case);
  f record := og.decision_facts(p_decision);
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
                       updated_at = now(), last_ledger_id = p_ledger_id,
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
                       last_evaluation = CASE WHEN p_evaluation IS NULL THEN c.last_evaluation
                                              ELSE p_evaluation #>> '{evaluation,result}' END
    WHERE c.case_id = cid;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'case "%" does not exist', cid USING ERRCODE = 'OG002';
  END IF;
END $$;

REVOKE ALL ON FUNCTION og.apply_case(text, jsonb, bigint, jsonb, jsonb) FROM PUBLIC;
