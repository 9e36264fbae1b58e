-- og.store_decision: stores a further decision of an event og.store_event stored in this
-- batch, once per (event, case): a joint meeting's decision (联席会) can assign or close
-- several shelved cases; its first decision is stored with the event, each further one
-- here, in the same transaction. The decision (its case_id) names the case it moves; the
-- case's last_ledger_id becomes the event's ledger id, and its facts for the auditor move
-- on by the decision (og.apply_case). Returns 'stored', or 'duplicate', storing nothing:
-- when the event's decision on that case is stored already (a resent event changes
-- nothing), or when the last og.store_event call of this transaction did not store this
-- event now (og.event_stored_now: the key holds another submission's event, which
-- og.store_event answered 'duplicate', in this batch or before it; its decisions must not
-- move a case the stored one never named). SQLSTATE OG002 when the event is not stored or
-- the case does not exist.

DROP FUNCTION IF EXISTS og.store_decision(text, text, text, text, jsonb, bytea, jsonb);

CREATE OR REPLACE FUNCTION og.store_decision(p_source text, p_event_id text, p_type text,
                                             p_district text, p_decision_detail jsonb,
                                             p_decision_body bytea)
  RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp AS $$
DECLARE
  cid text := p_decision_detail ->> 'case_id';
  eid bigint;
BEGIN
  IF EXISTS (SELECT 1 FROM og.ledger WHERE kind = 'decision' AND source_system = p_source
               AND source_event_id = p_event_id AND case_id = cid) THEN
    RETURN 'duplicate';
  END IF;
  SELECT ledger_id INTO eid FROM og.event_key
   WHERE source_system = p_source AND source_event_id = p_event_id;
  IF eid IS NULL THEN
    RAISE EXCEPTION 'event %/% is not stored', p_source, p_event_id USING ERRCODE = 'OG002';
  END IF;
  -- Stored now by the og.store_event call just before (archive sends a record's calls in
  -- order, one transaction a batch).
  IF eid::text IS DISTINCT FROM current_setting('og.event_stored_now', true) THEN
    RETURN 'duplicate';
  END IF;
  INSERT INTO og.ledger VALUES
    (nextval('og.ledger_id_seq'), now(), currval('og.batch_id_seq'), p_district, 'decision', cid,
     p_source, p_event_id, p_type, p_decision_detail, p_decision_body);
  PERFORM og.apply_case(p_decision_detail, eid, NULL);
  RETURN 'stored';
END $$;

REVOKE ALL ON FUNCTION og.store_decision(text, text, text, text, jsonb, bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION og.store_decision(text, text, text, text, jsonb, bytea)
  TO onegrid_writer;
