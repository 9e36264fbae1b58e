-- 008: the demand list (需求清单) and joint meetings (联席会). A unit shelves a case it
-- cannot solve alone (STATUS_SHELVED: the clock stops); a joint meeting's decision event
-- assigns shelved cases to a unit on a new clock, or closes them. One event can so decide
-- on several cases: its first decision is stored with the event by og.store_event, each
-- further one by og.store_decision, in the same transaction.

SET LOCAL ROLE onegrid_owner;

-- Stores a further decision of an event already stored in this batch, once per (event,
-- case): a resent event finds its decision there and changes nothing.
CREATE FUNCTION og.store_decision(p_source text, p_event_id text, p_type text, p_district text,
                                  p_decision_detail jsonb, p_decision_body bytea, p_case jsonb)
  RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og AS $$
DECLARE
  cid text := p_case ->> 'case_id';
  eid bigint;
  r og.case;
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
  INSERT INTO og.ledger VALUES
    (nextval('og.ledger_id_seq'), now(), currval('og.batch_id_seq'), p_district, 'decision', cid,
     p_source, p_event_id, p_type, p_decision_detail, p_decision_body);
  r := jsonb_populate_record(NULL::og.case, p_case);
  UPDATE og.case c SET state = r.state, unit_code = r.unit_code, rule_id = r.rule_id,
                       rule_version = r.rule_version, deadline_at = r.deadline_at,
                       closed_at = r.closed_at, contacts = coalesce(r.contacts, c.contacts),
                       escalation_level = coalesce(r.escalation_level, 0),
                       supervisor_unit = r.supervisor_unit, updated_at = now(),
                       last_ledger_id = eid
    WHERE c.case_id = cid;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'case "%" does not exist', cid USING ERRCODE = 'OG002';
  END IF;
  RETURN 'stored';
END $$;
REVOKE ALL ON FUNCTION og.store_decision(text, text, text, text, jsonb, bytea, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION og.store_decision(text, text, text, text, jsonb, bytea, jsonb)
  TO onegrid_writer;

-- The demand list as it stands (需求清单): shelved cases, oldest first, with who shelved
-- them and why.
CREATE VIEW audit.demand_list AS
  SELECT c.case_id, c.district_code, left(c.area_code, 12) AS community_code, c.category_code,
         c.title, c.unit_code AS shelved_by, c.contacts, s.shelved_at, s.note
    FROM og.case c
    LEFT JOIN LATERAL (
      SELECT (l.detail ->> 'decided')::timestamptz AS shelved_at, e.detail #>> '{status,note}' AS note
        FROM og.ledger l
        JOIN og.ledger e ON e.kind = 'event' AND e.source_system = l.source_system
                        AND e.source_event_id = l.source_event_id
       WHERE l.case_id = c.case_id AND l.kind = 'decision' AND l.detail ->> 'state' = 'shelved'
       ORDER BY l.ledger_id DESC LIMIT 1) s ON true
   WHERE c.state = 'shelved'
   ORDER BY s.shelved_at;
CREATE VIEW audit."需求清单" AS SELECT * FROM audit.demand_list;
COMMENT ON VIEW audit.demand_list IS '需求清单: shelved cases awaiting a joint meeting (联席会)';
GRANT SELECT ON ALL TABLES IN SCHEMA audit TO onegrid_auditor;
