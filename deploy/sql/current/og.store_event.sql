-- og.store_event: stores one accepted event with dispatch's (first) decision on it, once,
-- in the batch og.begin_batch opened. archive calls it for every accepted event but those
-- og.store_opened and og.store_moved store set-based (the events that each open a case of
-- their own, or move a case no other record of the batch names), and for those too when
-- it stores a batch record by record (daemons/archive/store.c); the event key (source,
-- event id) makes a resent event change nothing.
--
-- Arguments:
--   p_source, p_event_id     the event key: the authenticated source system and the
--                            source's event id
--   p_type                   the event's type (report, status, evaluation, ...)
--   p_district               the district the decision files it under
--   p_event_detail/_body     the event as JSON (with "received", "publisher" and "tag",
--                            which og.stored_outcome compares) and as its canonical protobuf
--                            bytes, both without the reporter's contact
--   p_decision_detail/_body  dispatch's Decision, likewise. Its case_id names the case it
--                            opens or moves (none: the event touches no case); the case's
--                            columns follow from it (og.decision_case, og.case_opening)
--   p_opens                  true when the decision opens the case (KIND_OPEN_CASE)
--   p_contact                the reporter's contact as JSON ({"name", "phone"}), kept
--                            apart in og.reporter_contact so it can be erased; or NULL
--
-- Effect: the event key, two ledger rows (the event, then the decision; the key and the
-- case name the event's row), and:
--   * opening a case: the og.case row (og.open_cases), and the report's og.case_report row
--     ('opened'). A case split off another (the decision has split_from, report_source,
--     report_event_id) is opened for that merged report (its ledger row's detail and key),
--     and the report (its og.case_report row and its contact) moves to the new case
--     ('split'); SQLSTATE OG002 if the report is not stored;
--   * moving a case: og.apply_case (SQLSTATE OG002 if the case does not exist); a merge
--     (KIND_MERGE) also adds the report's og.case_report row (og.case_report_merged);
--   * either way, the case's facts for the auditor (first_resolved_at ... last_evaluation,
--     migration 020) started or moved on by the decision (og.decision_facts) and, for an
--     evaluation, by the event, as og.case_facts_rebuilt derives them from the ledger;
--   * the contact, if any.
-- Each decision carries absolute values, so storing the same decision again changes
-- nothing.
--
-- Returns (outcome, case_id): ('stored', the case) when stored now; for an event whose
-- key is stored already, what og.stored_outcome answers: 'stored' if the stored
-- submission is this one (a resend by a hop), 'duplicate' if another submission of the
-- event was stored, with the case_id stored the first time. A further decision of the
-- same event on another case (a joint meeting's) goes through og.store_decision, right
-- after this call: og.event_stored_now, a setting of this transaction, holds the event's
-- ledger id when this call stored it now, else '' (og.store_decision then stores nothing).

DROP FUNCTION IF EXISTS og.store_event(text, text, text, text, jsonb, bytea, jsonb, bytea, jsonb,
                                       boolean, jsonb);

CREATE OR REPLACE FUNCTION og.store_event(p_source text, p_event_id text, p_type text,
                                          p_district text, p_event_detail jsonb,
                                          p_event_body bytea, p_decision_detail jsonb,
                                          p_decision_body bytea, p_opens boolean,
                                          p_contact jsonb, OUT outcome text, OUT case_id text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp AS $$
DECLARE
  lid bigint := nextval('og.ledger_id_seq');
  did bigint;
  cid text := p_decision_detail ->> 'case_id';
  v_kind text := p_decision_detail ->> 'kind';
  evaluation jsonb := CASE WHEN p_type = 'evaluation' THEN p_event_detail END;
  rep og.ledger;
BEGIN
  INSERT INTO og.event_key AS k (source_system, source_event_id, district_code, case_id, ledger_id, stored_at)
    VALUES (p_source, p_event_id, p_district, cid, lid, now())
    ON CONFLICT DO NOTHING;
  IF NOT FOUND THEN
    PERFORM set_config('og.event_stored_now', '', true);
    SELECT s.outcome, s.case_id INTO outcome, case_id
      FROM og.stored_outcome(p_source, p_event_id, p_event_detail ->> 'received',
                             p_event_detail ->> 'publisher', p_event_detail ->> 'tag') s;
    RETURN;
  END IF;
  PERFORM set_config('og.event_stored_now', lid::text, true);
  did := nextval('og.ledger_id_seq');
  INSERT INTO og.ledger VALUES
    (lid, now(), currval('og.batch_id_seq'), p_district, 'event', cid, p_source, p_event_id,
     p_type, p_event_detail, p_event_body),
    (did, now(), currval('og.batch_id_seq'), p_district, 'decision', cid, p_source, p_event_id,
     p_type, p_decision_detail, p_decision_body);
  IF cid IS NOT NULL THEN
    IF p_opens THEN
      IF p_decision_detail ? 'split_from' THEN
        SELECT * INTO rep FROM og.ledger l
         WHERE l.kind = 'event' AND l.source_system = p_decision_detail ->> 'report_source'
           AND l.source_event_id = p_decision_detail ->> 'report_event_id';
        IF NOT FOUND THEN
          RAISE EXCEPTION 'split: report %/% is not stored', p_decision_detail ->> 'report_source',
            p_decision_detail ->> 'report_event_id' USING ERRCODE = 'OG002';
        END IF;
        PERFORM og.open_cases(ARRAY[lid], ARRAY[p_decision_detail], ARRAY[rep.detail],
                              ARRAY[rep.source_system], ARRAY[rep.source_event_id],
                              ARRAY[evaluation]);
        UPDATE og.case_report cr SET case_id = cid, joined = 'split', ledger_id = did
         WHERE cr.source_system = rep.source_system AND cr.source_event_id = rep.source_event_id;
        UPDATE og.reporter_contact rc SET case_id = cid
         WHERE rc.source_system = rep.source_system AND rc.source_event_id = rep.source_event_id;
      ELSE
        PERFORM og.open_cases(ARRAY[lid], ARRAY[p_decision_detail], ARRAY[p_event_detail],
                              ARRAY[p_source], ARRAY[p_event_id], ARRAY[evaluation]);
        INSERT INTO og.case_report
          SELECT p_source, p_event_id, cid, 'opened', o.area_code,
                 coalesce((p_event_detail ->> 'time')::timestamptz, o.opened_at), o.latitude,
                 o.longitude, og.event_severity(p_event_detail), did
            FROM og.case_opening(p_decision_detail, p_event_detail) o
          ON CONFLICT DO NOTHING;
      END IF;
    ELSE
      PERFORM og.apply_case(p_decision_detail, lid, evaluation);
      IF v_kind = 'KIND_MERGE' THEN
        INSERT INTO og.case_report
          SELECT * FROM og.case_report_merged(p_source, p_event_id, p_event_detail,
                                              p_decision_detail, did)
          ON CONFLICT DO NOTHING;
      END IF;
    END IF;
  END IF;
  IF p_contact IS NOT NULL THEN
    INSERT INTO og.reporter_contact (source_system, source_event_id, case_id, name, phone)
      VALUES (p_source, p_event_id, cid, p_contact ->> 'name', p_contact ->> 'phone');
  END IF;
  outcome := 'stored';
  case_id := cid;
END $$;

REVOKE ALL ON FUNCTION og.store_event(text, text, text, text, jsonb, bytea, jsonb, bytea, boolean,
                                      jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION og.store_event(text, text, text, text, jsonb, bytea, jsonb, bytea,
                                         boolean, jsonb)
  TO onegrid_writer;
