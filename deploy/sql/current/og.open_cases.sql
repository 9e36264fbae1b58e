-- og.open_cases(ledger_id[], p_decision[], p_report[], p_source[], p_event_id[],
-- p_evaluation[]): opens cases, with one INSERT: for each element, the case p_decision[i]
-- opens (its detail as the ledger keeps it, KIND_OPEN_CASE), with the columns the decision
-- sets (og.decision_case) and those it takes from the report it is opened for
-- (og.case_opening: p_report[i], that report's detail, whose key is p_source[i],
-- p_event_id[i]), in the batch's shard, updated now, its last ledger row ledger_id[i] (the
-- event's), and the auditor's facts as the decision starts them (og.decision_facts; and
-- last_evaluation from p_evaluation[i], the event's detail when it is an evaluation, else
-- NULL).
--
-- Returns the number of cases opened. A case that exists already is a unique violation
-- (SQLSTATE 23505). The feed's rows for the new cases come from og.case's statement
-- trigger (og.feed_case_change). Called by og.store_opened for the cases of a batch and by
-- og.store_event for one; og.case_rebuilt rebuilds the same columns from the ledger.

CREATE OR REPLACE FUNCTION og.open_cases(p_ledger_id bigint[], p_decision jsonb[],
                                         p_report jsonb[], p_source text[], p_event_id text[],
                                         p_evaluation jsonb[])
  RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
  -- The batch's number first, then its row by og.batch's key: currval() is volatile, so
  -- `WHERE b.batch_id = currval(...)` cannot use the index and read every batch ever
  -- stored, calling currval() for each (181 ms per call at a million batches, and a
  -- district that trickles makes a batch of nearly every event).
  v_batch bigint := currval('og.batch_id_seq');
  v_shard text := (SELECT b.shard FROM og.batch b WHERE b.batch_id = v_batch);
  opened bigint;
BEGIN
  INSERT INTO og.case (case_id, shard, district_code, area_code, category_code, state, unit_code,
                       rule_id, rule_version, title, channel, source_system, source_event_id,
                       occurred_at, opened_at, deadline_at, closed_at, contacts, updated_at,
                       last_ledger_id, escalation_level, supervisor_unit, latitude, longitude,
                       severity, paused_at, extension_days, returned_units, first_resolved_at,
                       deadline_when_resolved, first_closed_at, deadline_when_closed, returned,
                       reworks, last_evaluation, stage, clock, clock_started_at,
                       extension_lapsed_at, lapsed_paused_at, lapsed_paused_deadline_at)
    SELECT m.case_id, v_shard, o.district_code, o.area_code, o.category_code, m.state,
           m.unit_code, m.rule_id, m.rule_version, o.title, o.channel, a.source, a.event_id,
           o.occurred_at, o.opened_at, m.deadline_at, m.closed_at, m.contacts, now(),
           a.ledger_id, m.escalation_level, m.supervisor_unit, o.latitude, o.longitude,
           m.severity, m.paused_at, m.extension_days, m.returned_units, f.resolved_at,
           f.resolved_deadline, f.closed_at, f.closed_deadline, f.returned, f.reworks,
           a.evaluation #>> '{evaluation,result}', m.stage, m.clock, m.clock_started_at,
           m.extension_lapsed_at, m.lapsed_paused_at, m.lapsed_paused_deadline_at
      FROM unnest(p_ledger_id, p_decision, p_report, p_source, p_event_id, p_evaluation)
             WITH ORDINALITY AS a(ledger_id, decision, report, source, event_id, evaluation, n),
           LATERAL og.decision_case(a.decision) m,
           LATERAL og.case_opening(a.decision, a.report) o,
           LATERAL og.decision_facts(a.decision) f
     ORDER BY a.n;
  GET DIAGNOSTICS opened = ROW_COUNT;
  RETURN opened;
END $$;

REVOKE ALL ON FUNCTION og.open_cases(bigint[], jsonb[], jsonb[], text[], text[], jsonb[])
  FROM PUBLIC;
