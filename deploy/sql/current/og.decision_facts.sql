-- og.decision_facts(p_decision): what one decision (its detail, as stored in the ledger)
-- adds to its case's facts for the auditor (migration 020): resolved_at and
-- resolved_deadline when it resolves the case (its decision time, "decided", else now(),
-- when its ledger row is recorded; and its deadline), closed_at and closed_deadline when
-- it closes it, returned when it returns it (state 'returned', or it names the unit that
-- returned it), reworks 1 when it sends the case back to work (resolved to in_progress,
-- closed to dispatched), else 0. og.open_cases and og.apply_cases apply it as each
-- decision is stored; og.case_facts_rebuilt states the same rules over the whole ledger.
-- A SQL function of one row (RETURNS TABLE), so that the planner inlines it into the
-- statements of og.open_cases and og.apply_cases, which call it in FROM, once per decision:
-- as PL/pgSQL it started a function call per decision, 2.0 to 3.3 µs of a batch's time
-- each, against 0.8 inlined (1,000 decisions of tests/bench/throughput); as a SQL function
-- of OUT parameters it was not inlined either (7.5 µs). The return type changed from OUT
-- parameters to a table (one row): the function is dropped first.

DROP FUNCTION IF EXISTS og.decision_facts(jsonb);

CREATE FUNCTION og.decision_facts(p_decision jsonb)
  RETURNS TABLE (resolved_at timestamptz, resolved_deadline timestamptz,
                 closed_at timestamptz, closed_deadline timestamptz, returned boolean,
                 reworks integer)
LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN x.s = 'resolved' THEN coalesce((p_decision ->> 'decided')::timestamptz, now()) END,
         CASE WHEN x.s = 'resolved' THEN (p_decision ->> 'deadline')::timestamptz END,
         CASE WHEN x.s = 'closed' THEN coalesce((p_decision ->> 'decided')::timestamptz, now()) END,
         CASE WHEN x.s = 'closed' THEN (p_decision ->> 'deadline')::timestamptz END,
         coalesce(x.s = 'returned', false) OR p_decision ->> 'returned_by' IS NOT NULL,
         CASE WHEN (x.p = 'resolved' AND x.s = 'in_progress') OR (x.p = 'closed' AND x.s = 'dispatched')
              THEN 1 ELSE 0 END
    FROM (SELECT p_decision ->> 'state', p_decision ->> 'previous_state') x(s, p)
$$;

REVOKE ALL ON FUNCTION og.decision_facts(jsonb) FROM PUBLIC;
