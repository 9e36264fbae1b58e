-- og.case_report_merged(source, event_id, event, decision, ledger_id): the og.case_report
-- row of a report that joins an open case (最多跑一次, dispatch's decision KIND_MERGE): the
-- report's key, the case the decision names, 'merged', the area the report came from (the
-- decision's report_area), its time and position as a case opened for it would take them
-- (og.case_opening), its severity (og.event_severity), and ledger_id, the decision's ledger
-- row. event and decision are the details the ledger keeps. The one definition of that
-- row: og.store_event writes it for one merge, og.store_moved for those of a batch.
-- SQL, set-returning, STABLE, not SECURITY DEFINER: inlined where it is called in FROM.

CREATE OR REPLACE FUNCTION og.case_report_merged(p_source text, p_event_id text, p_event jsonb,
                                                 p_decision jsonb, p_ledger_id bigint)
  RETURNS SETOF og.case_report
LANGUAGE sql STABLE AS $$
  SELECT p_source, p_event_id, p_decision ->> 'case_id', 'merged', p_decision ->> 'report_area',
         o.occurred_at, o.latitude, o.longitude, og.event_severity(p_event), p_ledger_id
    FROM og.case_opening(p_decision, p_event) o
$$;

REVOKE ALL ON FUNCTION og.case_report_merged(text, text, jsonb, jsonb, bigint) FROM PUBLIC;
