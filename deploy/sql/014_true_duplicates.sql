-- 014: an answer that is true from the publisher's side. An event is "duplicate" only when
-- a different submission of it was stored; the submission that was stored is "stored",
-- however often a hop resent it (intake after dispatch restarted, dispatch after archive
-- did): before this, 500 of 2,000 events sent once were answered "duplicate" after
-- dispatch was killed under load. A submission is known by when intake received it and
-- from which publisher, both kept in the event's ledger row (detail ->> 'received',
-- detail ->> 'publisher', written by archive as og_time_format gives them).

-- ('stored' | 'duplicate', case_id) for an event already stored, as seen by the
-- submission received at p_received from p_publisher; no row when it is not stored.
CREATE FUNCTION og.stored_outcome(p_source text, p_event_id text, p_received text,
                                  p_publisher text, OUT outcome text, OUT case_id text)
RETURNS SETOF record
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp AS $$
  SELECT CASE WHEN l.detail ->> 'received' = p_received AND l.detail ->> 'publisher' = p_publisher
              THEN 'stored' ELSE 'duplicate' END,
         k.case_id
    FROM og.event_key k
    JOIN og.ledger l ON l.ledger_id = k.ledger_id AND l.recorded_at = k.stored_at
   WHERE k.source_system = p_source AND k.source_event_id = p_event_id
$$;
REVOKE ALL ON FUNCTION og.stored_outcome(text, text, text, text) FROM PUBLIC;
-- dispatch asks it for events a resend brings that are stored already.
GRANT EXECUTE ON FUNCTION og.stored_outcome(text, text, text, text)
  TO onegrid_writer, onegrid_reader;

-- store_event: a conflicting event key answers through og.stored_outcome.
CREATE OR REPLACE FUNCTION og.store_event(p_source text, p_event_id text, p_type text, p_district text,
                               p_event_detail jsonb, p_event_body bytea,
                               p_decision_detail jsonb, p_decision_body bytea,
                               p_case jsonb, p_opens boolean, p_contact jsonb,
                               OUT outcome text, OUT case_id text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp AS $$
DECLARE
  lid bigint := nextval('og.ledger_id_seq');
  did bigint;
  bid bigint := currval('og.batch_id_seq');
  cid text := p_case ->> 'case_id';
  v_kind text := p_decision_detail ->> 'kind';
  r og.case;
  rep og.ledger;
BEGIN
  INSERT INTO og.event_key AS k (source_system, source_event_id, district_code, case_id, ledger_id, stored_at)
    VALUES (p_source, p_event_id, p_district, cid, lid, now())
    ON CONFLICT DO NOTHING;
  IF NOT FOUND THEN
    SELECT s.outcome, s.case_id INTO outcome, case_id
      FROM og.stored_outcome(p_source, p_event_id, p_event_detail ->> 'received',
                             p_event_detail ->> 'publisher') s;
    RETURN;
  END IF;
  did := nextval('og.ledger_id_seq');
  INSERT INTO og.ledger VALUES
    (lid, now(), bid, p_district, 'event', cid, p_source, p_event_id, p_type, p_event_detail, p_event_body),
    (did, now(), bid, p_district, 'decision', cid, p_source, p_event_id, p_type,
     p_decision_detail, p_decision_body);
  IF cid IS NOT NULL THEN
    r := jsonb_populate_record(NULL::og.case, p_case);
    IF p_opens THEN
      IF p_decision_detail ? 'split_from' THEN
        SELECT * INTO rep FROM og.ledger l
         WHERE l.kind = 'event' AND l.source_system = p_decision_detail ->> 'report_source'
           AND l.source_event_id = p_decision_detail ->> 'report_event_id';
        IF NOT FOUND THEN
          RAISE EXCEPTION 'split: report %/% is not stored', p_decision_detail ->> 'report_source',
            p_decision_detail ->> 'report_event_id' USING ERRCODE = 'OG002';
        END IF;
        r.title := coalesce(rep.detail #>> '{report,title}', rep.detail #>> '{sensor_alert,title}');
        r.channel := coalesce(rep.detail #>> '{report,channel}', 'CHANNEL_SENSOR');
        r.occurred_at := (rep.detail ->> 'time')::timestamptz;
        r.latitude := (rep.detail #>> '{location,latitude}')::double precision;
        r.longitude := (rep.detail #>> '{location,longitude}')::double precision;
        UPDATE og.case_report cr SET case_id = cid, joined = 'split', ledger_id = did
         WHERE cr.source_system = rep.source_system AND cr.source_event_id = rep.source_event_id;
        UPDATE og.reporter_contact rc SET case_id = cid
         WHERE rc.source_system = rep.source_system AND rc.source_event_id = rep.source_event_id;
      ELSE
        INSERT INTO og.case_report VALUES
          (p_source, p_event_id, cid, 'opened', r.area_code,
           coalesce((p_event_detail ->> 'time')::timestamptz, r.opened_at),
           (p_event_detail #>> '{location,latitude}')::double precision,
           (p_event_detail #>> '{location,longitude}')::double precision,
           og.event_severity(p_event_detail), did)
          ON CONFLICT DO NOTHING;
      END IF;
      r.updated_at := now();
      r.last_ledger_id := lid;
      r.escalation_level := coalesce(r.escalation_level, 0);
      r.returned_units := coalesce(r.returned_units, '{}');
      INSERT INTO og.case SELECT r.*;
    ELSE
      PERFORM og.apply_case(cid, p_case, lid);
      IF v_kind = 'KIND_MERGE' THEN
        INSERT INTO og.case_report VALUES
          (p_source, p_event_id, cid, 'merged', p_decision_detail ->> 'report_area',
           (p_event_detail ->> 'time')::timestamptz,
           (p_event_detail #>> '{location,latitude}')::double precision,
           (p_event_detail #>> '{location,longitude}')::double precision,
           og.event_severity(p_event_detail), did)
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
