-- og.store_moved: stores, with one statement per table, the events of the batch
-- og.begin_batch opened that each move a case no other event of the batch touches (a
-- status update, an evaluation, an escalation: dispatch's decision KIND_UPDATE_CASE or
-- KIND_ESCALATE on one case), with dispatch's decision on each: what og.store_event does
-- for each of them, set-based. Status updates and evaluations outnumber reports several
-- times over; one og.store_event call each cost a PL/pgSQL frame and six executor
-- start-ups per event.
-- archive (daemons/archive/store.c) sends such an event here only when its key comes once
-- in the batch and its case is named by no other record of the batch (neither opened,
-- moved, merged into, split nor decided on by a joint meeting), so the order of the
-- batch's records among themselves does not matter for it; the others go, in order after
-- it, to og.store_event and og.store_decision.
--
-- Arguments: arrays of one element per event, in the batch's order, each element what
-- og.store_event's argument of that name is (p_case never NULL: it names the case moved;
-- p_contact NULL for none).
--
-- Effect: for each event whose key is not stored yet, in the order given: its event key,
-- its two ledger rows (the event, then the decision, numbered one after the other), its
-- case moved by og.apply_cases (the feed's rows from og.case's statement trigger,
-- og.feed_case_change) and the contact, if any. SQLSTATE OG002 when a case does not exist.
--
-- Returns one row per event, as og.store_opened does (og.batch_outcomes). Any error stores
-- nothing: archive then stores the batch event by event, so the event at fault is the one
-- refused.

CREATE OR REPLACE FUNCTION og.store_moved(p_source text[], p_event_id text[], p_type text[],
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
  fresh bigint[];      -- positions of the events stored now
  cases text[];        -- and, for each, the case it moves,
  changes jsonb[];     -- the case columns its decision sets,
  lids bigint[];       -- its event's ledger id,
  decisions jsonb[];   -- the decision's detail,
  evaluations jsonb[]; -- and the event's detail when it is an evaluation
BEGIN
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
  ), rc AS (
    INSERT INTO og.reporter_contact (source_system, source_event_id, case_id, name, phone)
      SELECT s.source, s.event_id, s.c ->> 'case_id', s.contact ->> 'name', s.contact ->> 'phone'
        FROM s WHERE s.contact IS NOT NULL ORDER BY s.n
  )
  SELECT coalesce(array_agg(s.n ORDER BY s.n), '{}'),
         coalesce(array_agg(s.c ->> 'case_id' ORDER BY s.n), '{}'),
         coalesce(array_agg(s.c ORDER BY s.n), '{}'),
         coalesce(array_agg(s.lid ORDER BY s.n), '{}'),
         coalesce(array_agg(s.decision ORDER BY s.n), '{}'),
         coalesce(array_agg(CASE WHEN s.type = 'evaluation' THEN s.event END ORDER BY s.n), '{}')
    INTO fresh, cases, changes, lids, decisions, evaluations
    FROM s;

  IF og.apply_cases(cases, changes, lids, decisions, evaluations) <> cardinality(cases) THEN
    RAISE EXCEPTION 'case "%" does not exist (or is named twice)',
      (SELECT x FROM unnest(cases) x WHERE NOT EXISTS (SELECT 1 FROM og.case c WHERE c.case_id = x)
        LIMIT 1) USING ERRCODE = 'OG002';
  END IF;

  RETURN QUERY SELECT * FROM og.batch_outcomes(p_source, p_event_id, p_event_detail, p_case, fresh);
END $$;

REVOKE ALL ON FUNCTION og.store_moved(text[], text[], text[], text[], jsonb[], bytea[], jsonb[],
                                      bytea[], jsonb[], jsonb[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION og.store_moved(text[], text[], text[], text[], jsonb[], bytea[],
                                         jsonb[], bytea[], jsonb[], jsonb[])
  TO onegrid_writer;
