-- og.store_records: stores, with one statement per table, what every event of a set-based
-- call (og.store_opened, og.store_moved) stores whatever its decision does: for each event
-- whose key is not stored yet, in the order given, its event key (naming the case its
-- decision names), its two ledger rows (the event, then the decision, numbered one after
-- the other, in the batch og.begin_batch opened) and the reporter's contact, if any.
-- A key stored already stores nothing: og.batch_outcomes answers for it.
--
-- Arguments: arrays of one element per event, each what og.store_event's argument of that
-- name is (p_contact NULL for none). The callers send an event key at most once per call.
--
-- Returns one row per event stored now: its position in the arrays (from 1) and the ledger
-- ids of its event and of its decision. Planned once per session (force_generic_plan).

CREATE OR REPLACE FUNCTION og.store_records(p_source text[], p_event_id text[], p_type text[],
                                            p_district text[], p_event_detail jsonb[],
                                            p_event_body bytea[], p_decision_detail jsonb[],
                                            p_decision_body bytea[], p_contact jsonb[])
  RETURNS TABLE (n bigint, ledger_id bigint, decision_ledger_id bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp
SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
  bid bigint := currval('og.batch_id_seq');
BEGIN
  -- The ledger ids are taken in the arrays' order, two per event: the event's, then the
  -- decision's (u is computed once: it calls nextval).
  RETURN QUERY
  WITH u AS (
    SELECT a.*, a.decision ->> 'case_id' AS case_id, nextval('og.ledger_id_seq') AS lid,
           nextval('og.ledger_id_seq') AS did
      FROM unnest(p_source, p_event_id, p_type, p_district, p_event_detail, p_event_body,
                  p_decision_detail, p_decision_body, p_contact)
             WITH ORDINALITY AS a(source, event_id, type, district, event, event_body,
                                  decision, decision_body, contact, n)
     ORDER BY a.n
  ), k AS (
    INSERT INTO og.event_key (source_system, source_event_id, district_code, case_id,
                              ledger_id, stored_at)
      SELECT u.source, u.event_id, u.district, u.case_id, u.lid, now()
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
             LATERAL (VALUES (s.lid, now(), bid, s.district, 'event', s.case_id, s.source,
                              s.event_id, s.type, s.event, s.event_body),
                             (s.did, now(), bid, s.district, 'decision', s.case_id, s.source,
                              s.event_id, s.type, s.decision, s.decision_body)) x
       ORDER BY 1
  ), rc AS (
    INSERT INTO og.reporter_contact (source_system, source_event_id, case_id, name, phone)
      SELECT s.source, s.event_id, s.case_id, s.contact ->> 'name', s.contact ->> 'phone'
        FROM s WHERE s.contact IS NOT NULL ORDER BY s.n
  )
  SELECT s.n, s.lid, s.did FROM s ORDER BY s.n;
END $$;

REVOKE ALL ON FUNCTION og.store_records(text[], text[], text[], text[], jsonb[], bytea[], jsonb[],
                                        bytea[], jsonb[]) FROM PUBLIC;
