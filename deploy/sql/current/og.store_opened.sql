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
-- og.store_event's argument of that name is (p_contact NULL for none).
--
-- Effect: for each event whose key is not stored yet, in the order given: its event key,
-- its two ledger rows (the event, then the decision, numbered one after the other) and the
-- contact, if any (og.store_records), its og.case row (og.open_cases, as og.store_event
-- opens a case) and the report's og.case_report row ('opened'). The feed's rows for the
-- new cases come from the triggers of og.case, once for the statement
-- (og.feed_case_change).
--
-- Its statements are planned once per session (force_generic_plan): planned anew for
-- each call, as the default chose for array arguments, a trickle of small batches spent
-- about a fifth of the call planning (1.33 ms a call for two events, 1.09 ms without).
--
-- Returns one row per event: its position in the arrays (from 1) and what og.store_event
-- would answer: ('stored', the case) when stored now, else og.stored_outcome's answer
-- (og.batch_outcomes); and for an event stored now the ledger ids of its event and of its
-- decision (NULL for the others), from which archive makes the digests of their records
-- for og.end_batch. (The columns it returns changed: the file drops it first.)
-- Any error stores nothing: archive then stores the batch event by event, so the event at
-- fault is the one refused.

DROP FUNCTION IF EXISTS og.store_opened(text[], text[], text[], text[], jsonb[], bytea[], jsonb[],
                                        bytea[], jsonb[]);
DROP FUNCTION IF EXISTS og.store_opened(text[], text[], text[], text[], jsonb[], bytea[], jsonb[],
                                        bytea[], jsonb[], jsonb[]);

CREATE OR REPLACE FUNCTION og.store_opened(p_source text[], p_event_id text[], p_type text[],
                                           p_district text[], p_event_detail jsonb[],
                                           p_event_body bytea[], p_decision_detail jsonb[],
                                           p_decision_body bytea[], p_contact jsonb[])
  RETURNS TABLE (i integer, outcome text, case_id text, ledger_id bigint,
                 decision_ledger_id bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp
SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
  fresh bigint[]; -- positions of the events stored now,
  lids bigint[];  -- the ledger ids of their events
  dids bigint[];  -- and of their decisions
BEGIN
  SELECT coalesce(array_agg(r.n ORDER BY r.n), '{}'), coalesce(array_agg(r.ledger_id ORDER BY r.n), '{}'),
         coalesce(array_agg(r.decision_ledger_id ORDER BY r.n), '{}')
    INTO fresh, lids, dids
    FROM og.store_records(p_source, p_event_id, p_type, p_district, p_event_detail, p_event_body,
                          p_decision_detail, p_decision_body, p_contact) r;

  -- The events stored now, with their ledger ids: a join on the positions (a subscript
  -- of a jsonb[] walks the array from its start).
  PERFORM og.open_cases(array_agg(f.lid ORDER BY a.n), array_agg(a.decision ORDER BY a.n),
                        array_agg(a.event ORDER BY a.n), array_agg(a.source ORDER BY a.n),
                        array_agg(a.event_id ORDER BY a.n),
                        array_agg(CASE WHEN a.type = 'evaluation' THEN a.event END ORDER BY a.n))
     FROM unnest(p_source, p_event_id, p_type, p_event_detail, p_decision_detail)
            WITH ORDINALITY AS a(source, event_id, type, event, decision, n)
     JOIN unnest(fresh, lids) AS f(n, lid) ON f.n = a.n
   HAVING count(*) > 0;

  -- No ON CONFLICT (3.5 µs an event, a third of the insert): a report's row exists only
  -- for a stored event key (made with the key, or rebuilt from the ledger by
  -- `onegridctl rebuild-cases`), and these keys were not stored before this call. Were a
  -- row there, the unique violation would store nothing of the batch, and archive would
  -- store it event by event, through og.store_event.
  INSERT INTO og.case_report
    SELECT a.source, a.event_id, a.decision ->> 'case_id', 'opened', o.area_code,
           coalesce((a.event ->> 'time')::timestamptz, o.opened_at), o.latitude, o.longitude,
           og.event_severity(a.event), f.did
      FROM unnest(p_source, p_event_id, p_event_detail, p_decision_detail)
             WITH ORDINALITY AS a(source, event_id, event, decision, n)
      JOIN unnest(fresh, dids) AS f(n, did) ON f.n = a.n,
           LATERAL og.case_opening(a.decision, a.event) o
     ORDER BY a.n;

  -- With the ledger ids of the events stored now (a join on the positions, as above).
  RETURN QUERY SELECT o.i, o.outcome, o.case_id, f.lid, f.did
                 FROM og.batch_outcomes(p_source, p_event_id, p_event_detail, p_decision_detail,
                                        fresh) o
                 LEFT JOIN unnest(fresh, lids, dids) AS f(n, lid, did) ON f.n = o.i;
END $$;

REVOKE ALL ON FUNCTION og.store_opened(text[], text[], text[], text[], jsonb[], bytea[], jsonb[],
                                       bytea[], jsonb[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION og.store_opened(text[], text[], text[], text[], jsonb[], bytea[],
                                          jsonb[], bytea[], jsonb[])
  TO onegrid_writer;
