-- og.store_opened: stores, with one statement per table, the events of the batch
-- og.begin_batch opened that each open a case of their own (dispatch's decision
-- KIND_OPEN_CASE, not a split), with dispatch's decision on each: what og.store_event does
-- for each of them, set-based. archive (daemons/archive/store.c) sends every such event of
-- a batch here, in one call, and the others, in order after it, to og.store_event and
-- og.store_decision: an event that opens a case depends on nothing else in its batch.
-- archive sends an event key at most once per call; an event whose key comes twice in a
-- batch goes to og.store_event.
--
-- Arguments: arrays of one element per event, in the batch's order, each element what
-- og.store_event's argument of that name is (p_case never NULL; p_contact NULL for none).
--
-- Effect: for each event whose key is not stored yet, in the order given: its event key,
-- its two ledger rows (the event, then the decision, numbered one after the other), its
-- og.case row (the case columns p_case names, the rest as og.store_event sets them when it
-- opens a case, the auditor's facts by og.decision_facts), the report's og.case_report
-- row ('opened') and the contact, if any. The feed's rows for the new cases come from the
-- triggers of og.case, once for the statement (og.feed_case_change).
--
-- Its statements are planned once per session (force_generic_plan): planned anew for
-- each call, as the default chose for array arguments, a trickle of small batches spent
-- about a fifth of the call planning (1.33 ms a call for two events, 1.09 ms without).
--
-- Returns one row per event: its position in the arrays (from 1) and what og.store_event
-- would answer: ('stored', the case) when stored now, else og.stored_outcome's answer
-- (og.batch_outcomes).
-- Any error stores nothing: archive then stores the batch event by event, so the event at
-- fault is the one refused.

CREATE OR REPLACE FUNCTION og.store_opened(p_source text[], p_event_id text[], p_type text[],
                                           p_district text[], p_event_detail jsonb[],
                                           p_event_body bytea[], p_decision_detail jsonb[],
                                           p_decision_body bytea[], p_case jsonb[],
                                           p_contact jsonb[])
  RETURNS TABLE (i integer, outcome text, case_id text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp
SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
  bid bigint := currval('og.batch_id_seq');
  fresh bigint[]; -- positions of the events stored now
BEGIN
  -- The ledger ids are taken in the arrays' order, two per event: the event's, then the
  -- decision's (u is computed once: it calls nextval).
  WITH u AS (
    SELECT a.*, nextval('og.ledger_id_seq') AS lid, nextval('og.ledger_id_seq') AS did
      FROM unnest(p_source, p_event_id, p_type, p_district, p_event_detail, p_event_body,
                  p_decision_detail, p_decision_body, p_case, p_contact)
             WITH ORDINALITY AS a(source, event_id, type, district, event, event_body,
                                  decision, decision_body, c, contact, n)
     ORDER BY a.n
  ), k AS (
    INSERT INTO og.event_key (source_system, source_event_id, district_code, case_id,
                              ledger_id, stored_at)
      SELECT u.source, u.event_id, u.district, u.c ->> 'case_id', u.lid, now()
        FROM u ORDER BY u.n
      ON CONFLICT DO NOTHING
      RETURNING ledger_id
  ), s AS (
    -- The events stored now.
    SELECT u.* FROM u JOIN k ON k.ledger_id = u.lid
  ), l AS (
    INSERT INTO og.ledger
      SELECT x.*
        FROM s,
             LATERAL (VALUES (s.lid, now(), bid, s.district, 'event', s.c ->> 'case_id',
                              s.source, s.event_id, s.type, s.event, s.event_body),
                             (s.did, now(), bid, s.district, 'decision', s.c ->> 'case_id',
                              s.source, s.event_id, s.type, s.decision, s.decision_body)) x
       ORDER BY 1
  ), oc AS (
    INSERT INTO og.case
      SELECT r.*
        FROM s,
             LATERAL og.decision_facts(s.decision) f,
             LATERAL jsonb_populate_record(NULL::og.case, s.c || jsonb_build_object(
               'updated_at', now(), 'last_ledger_id', s.lid,
               'escalation_level', coalesce((s.c ->> 'escalation_level')::integer, 0),
               'returned_units', coalesce(nullif(s.c -> 'returned_units', 'null'::jsonb),
                                          '[]'::jsonb),
               'stage', coalesce(s.c ->> 'stage', og.case_stage(s.c ->> 'state')),
               'clock', coalesce(s.c ->> 'clock',
                                 og.case_clock(og.case_stage(s.c ->> 'state'),
                                               (s.c ->> 'deadline_at')::timestamptz,
                                               (s.c ->> 'paused_at')::timestamptz)),
               'first_resolved_at', f.resolved_at,
               'deadline_when_resolved', f.resolved_deadline,
               'first_closed_at', f.closed_at, 'deadline_when_closed', f.closed_deadline,
               'returned', f.returned, 'reworks', f.reworks,
               'last_evaluation', CASE WHEN s.type = 'evaluation'
                                       THEN s.event #>> '{evaluation,result}' END)) r
       ORDER BY s.n
  ), cr AS (
    INSERT INTO og.case_report
      SELECT s.source, s.event_id, s.c ->> 'case_id', 'opened', s.c ->> 'area_code',
             coalesce((s.event ->> 'time')::timestamptz, (s.c ->> 'opened_at')::timestamptz),
             (s.event #>> '{location,latitude}')::double precision,
             (s.event #>> '{location,longitude}')::double precision,
             og.event_severity(s.event), s.did
        FROM s ORDER BY s.n
      ON CONFLICT DO NOTHING
  ), rc AS (
    INSERT INTO og.reporter_contact (source_system, source_event_id, case_id, name, phone)
      SELECT s.source, s.event_id, s.c ->> 'case_id', s.contact ->> 'name', s.contact ->> 'phone'
        FROM s WHERE s.contact IS NOT NULL ORDER BY s.n
  )
  SELECT coalesce(array_agg(s.n), '{}') INTO fresh FROM s;

  RETURN QUERY SELECT * FROM og.batch_outcomes(p_source, p_event_id, p_event_detail, p_case, fresh);
END $$;

REVOKE ALL ON FUNCTION og.store_opened(text[], text[], text[], text[], jsonb[], bytea[], jsonb[],
                                       bytea[], jsonb[], jsonb[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION og.store_opened(text[], text[], text[], text[], jsonb[], bytea[],
                                          jsonb[], bytea[], jsonb[], jsonb[])
  TO onegrid_writer;
