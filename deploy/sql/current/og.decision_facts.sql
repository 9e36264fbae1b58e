-- og.decision_facts(p_decision): what one decision (its detail, as stored in the ledger)
-- adds to its case's facts for the auditor (migration 020): resolved_at and
-- resolved_deadline when it resolves the case (its decision time, "decided", else now(),
-- when its ledger row is recorded; and its deadline), closed_at and closed_deadline when
-- it closes it, returned when it returns it (state 'returned', or it names the unit that
-- returned it), reworks 1 when it sends the case back to work (resolved to in_progress,
-- closed to dispatched), else 0. og.open_cases and og.apply_cases apply it as each
-- decision is stored; og.case_facts_rebuilt states the same rules over the whole ledger.
-- PL/pgSQL, not SQL: called from PL/pgSQL, a SQL function of several OUT parameters is not
-- inlined and starts an executor per call (7.5 µs here, against 2.5).

CREATE OR REPLACE FUNCTION og.decision_facts(p_decision jsonb,
                                             OUT resolved_at timestamptz,
                                             OUT resolved_deadline timestamptz,
                                             OUT closed_at timestamptz,
                                             OUT closed_deadline timestamptz,
                                             OUT returned boolean, OUT reworks integer)
LANGUAGE plpgsql STABLE AS $$
DECLARE
  s text := p_decision ->> 'state';
  p text := p_decision ->> 'previous_state';
BEGIN
  IF s = 'resolved' THEN
    resolved_at := coalesce((p_decision ->> 'decided')::timestamptz, now());
    resolved_deadline := (p_decision ->> 'deadline')::timestamptz;
  ELSIF s = 'closed' THEN
    closed_at := coalesce((p_decision ->> 'decided')::timestamptz, now());
    closed_deadline := (p_decision ->> 'deadline')::timestamptz;
  END IF;
  returned := coalesce(s = 'returned', false) OR p_decision ->> 'returned_by' IS NOT NULL;
  reworks := CASE WHEN (p = 'resolved' AND s = 'in_progress') OR (p = 'closed' AND s = 'dispatched')
                  THEN 1 ELSE 0 END;
END $$;

REVOKE ALL ON FUNCTION og.decision_facts(jsonb) FROM PUBLIC;
