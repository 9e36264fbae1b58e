-- og.store_moved: stores, with one statement per table, the events of the batch
-- og.begin_batch opened that each move a case no other event of the batch touches (a
-- status update, an evaluation, an escalation, a report that joins an open case (最多跑一次):
-- dispatch's decision KIND_UPDATE_CASE, KIND_ESCALATE or KIND_MERGE on one case), with
-- dispatch's decision on each: what og.store_event does for each of them, set-based.
-- Status updates and evaluations outnumber reports several times over, and where many
-- residents report one problem, most of their reports join its case; one og.store_event
-- call each cost a PL/pgSQL frame and six executor start-ups per event.
-- archive (daemons/archive/store.c) sends such an event here only when its key comes once
-- in the batch and its case is named by no other record of the batch (neither opened,
-- moved, merged into, split nor decided on by a joint meeting), so the order of the
-- batch's records among themselves does not matter for it; the others go, in order after
-- it, to og.store_event and og.store_decision.
--
-- Arguments: arrays of one element per event, in the batch's order, each element what
-- og.store_event's argument of that name is (p_contact NULL for none).
--
-- Effect: for each event whose key is not stored yet, in the order given: its event key,
-- its two ledger rows (the event, then the decision, numbered one after the other) and the
-- contact, if any (og.store_records), its case moved by og.apply_cases (the feed's
-- rows from og.case's statement trigger, og.feed_case_change), and for a merge the
-- report's og.case_report row (og.case_report_merged, as og.store_event writes it).
-- SQLSTATE OG002 when a case does not exist.
--
-- Returns one row per event, as og.store_opened does (og.batch_outcomes, and the ledger
-- ids of the events stored now; the columns it returns changed: the file drops it first).
-- Any error stores nothing: archive then stores the batch event by event, so the event at
-- fault is the one refused.

DROP FUNCTION IF EXISTS og.store_moved(text[], text[], text[], text[], jsonb[], bytea[], jsonb[],
                                       bytea[], jsonb[]);
DROP FUNCTION IF EXISTS og.store_moved(text[], text[], text[], text[], jsonb[], bytea[], jsonb[],
                                       bytea[], jsonb[], jsonb[]);

CREATE OR REPLACE FUNCTION og.store_moved(p_source text[], p_event_id text[], p_type text[],
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
  moved bigint;
  merges bigint;  -- how many of them are merges
BEGIN
  SELECT coalesce(array_agg(r.n ORDER BY r.n), '{}'), coalesce(array_agg(r.ledger_id ORDER BY r.n), '{}'),
         coalesce(array_agg(r.decision_ledger_id ORDER BY r.n), '{}')
    INTO fresh, lids, dids
    FROM og.store_records(p_source, p_event_id, p_type, p_district, p_event_detail, p_event_body,
                          p_decision_detail, p_decision_body, p_contact) r;

  -- The events stored now, with their ledger ids: a join on the positions (a subscript
  -- of a jsonb[] walks the array from its start).
  SELECT og.apply_cases(array_agg(f.lid ORDER BY a.n), array_agg(a.decision ORDER BY a.n),
                        array_agg(CASE WHEN a.type = 'evaluation' THEN a.event END ORDER BY a.n)),
         count(*) FILTER (WHERE a.decision ->> 'kind' = 'KIND_MERGE')
    INTO moved, merges
    FROM unnest(p_type, p_event_detail, p_decision_detail)
           WITH ORDINALITY AS a(type, event, decision, n)
    JOIN unnest(fresh, lids) AS f(n, lid) ON f.n = a.n
  HAVING count(*) > 0;
  IF coalesce(moved, 0) <> cardinality(fresh) THEN
    RAISE EXCEPTION 'case "%" does not exist, or is named twice in one call',
      coalesce((SELECT d ->> 'case_id' FROM unnest(p_decision_detail) d
                 WHERE NOT EXISTS (SELECT 1 FROM og.case c WHERE c.case_id = d ->> 'case_id')
                 LIMIT 1),
               (SELECT d ->> 'case_id' FROM unnest(p_decision_detail) d
                 GROUP BY 1 HAVING count(*) > 1 LIMIT 1))
      USING ERRCODE = 'OG002';
  END IF;

  -- The merged reports' rows. Most calls carry none (status updates and the like): then
  -- the statement is not started at all.
  IF merges > 0 THEN
    INSERT INTO og.case_report
      SELECT r.*
        FROM unnest(p_source, p_event_id, p_event_detail, p_decision_detail)
               WITH ORDINALITY AS a(source, event_id, event, decision, n)
        JOIN unnest(fresh, dids) AS f(n, did) ON f.n = a.n,
             LATERAL og.case_report_merged(a.source, a.event_id, a.event, a.decision, f.did) r
       WHERE a.decision ->> 'kind' = 'KIND_MERGE'
       ORDER BY a.n
      ON CONFLICT DO NOTHING;
  END IF;

  -- With the ledger ids of the events stored now (a join on the positions, as above).
  RETURN QUERY SELECT o.i, o.outcome, o.case_id, f.lid, f.did
                 FROM og.batch_outcomes(p_source, p_event_id, p_event_detail, p_decision_detail,
                                        fresh) o
                 LEFT JOIN unnest(fresh, lids, dids) AS f(n, lid, did) ON f.n = o.i;
END $$;

REVOKE ALL ON FUNCTION og.store_moved(text[], text[], text[], text[], jsonb[], bytea[], jsonb[],
                                      bytea[], jsonb[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION og.store_moved(text[], text[], text[], text[], jsonb[], bytea[],
                                         jsonb[], bytea[], jsonb[])
  TO onegrid_writer;
