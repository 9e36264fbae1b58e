-- 003: 督办 (supervision): an open case past its deadline escalates one level up the
-- hierarchy (grid -> community -> street -> district), to the supervising unit of that
-- level, and keeps escalating while it stays open: level k is due at the deadline plus
-- (k - 1) times the case's time limit. Each escalation is a ledger event of its own
-- (source "onegrid", id "esc-<case id>-<level>"), so the event key makes it happen once.

SET LOCAL ROLE onegrid_owner;

-- Who supervises each area: the unit an overdue case escalates to at that area's level.
CREATE TABLE og.supervisor (
  area_code text PRIMARY KEY REFERENCES og.area (code),
  unit_code text NOT NULL REFERENCES og.handling_unit (code)
);
GRANT SELECT ON og.supervisor TO onegrid_reader;

ALTER TABLE og.case ADD COLUMN escalation_level integer NOT NULL DEFAULT 0
                      CHECK (escalation_level BETWEEN 0 AND 3),
                    ADD COLUMN supervisor_unit text;

-- store_event now also moves escalation_level and supervisor_unit.
CREATE OR REPLACE FUNCTION og.store_event(p_source text, p_event_id text, p_type text, p_district text,
                               p_event_detail jsonb, p_event_body bytea,
                               p_decision_detail jsonb, p_decision_body bytea,
                               p_case jsonb, p_opens boolean, p_contact jsonb,
                               OUT outcome text, OUT case_id text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og AS $$
DECLARE
  lid bigint := nextval('og.ledger_id_seq');
  bid bigint := currval('og.batch_id_seq');
  cid text := p_case ->> 'case_id';
  r og.case;
BEGIN
  INSERT INTO og.event_key AS k (source_system, source_event_id, district_code, case_id, ledger_id, stored_at)
    VALUES (p_source, p_event_id, p_district, cid, lid, now())
    ON CONFLICT DO NOTHING;
  IF NOT FOUND THEN
    SELECT 'duplicate', k.case_id INTO outcome, case_id
      FROM og.event_key k WHERE k.source_system = p_source AND k.source_event_id = p_event_id;
    RETURN;
  END IF;
  INSERT INTO og.ledger VALUES
    (lid, now(), bid, p_district, 'event', cid, p_source, p_event_id, p_type, p_event_detail, p_event_body),
    (nextval('og.ledger_id_seq'), now(), bid, p_district, 'decision', cid, p_source, p_event_id, p_type,
     p_decision_detail, p_decision_body);
  IF cid IS NOT NULL THEN
    r := jsonb_populate_record(NULL::og.case, p_case);
    IF p_opens THEN
      r.updated_at := now();
      r.last_ledger_id := lid;
      r.escalation_level := coalesce(r.escalation_level, 0);
      INSERT INTO og.case SELECT r.*;
    ELSE
      UPDATE og.case c SET state = r.state, unit_code = r.unit_code, rule_id = r.rule_id,
                           rule_version = r.rule_version, deadline_at = r.deadline_at,
                           closed_at = r.closed_at, contacts = coalesce(r.contacts, c.contacts),
                           escalation_level = coalesce(r.escalation_level, 0),
                           supervisor_unit = r.supervisor_unit,
                           updated_at = now(), last_ledger_id = lid
        WHERE c.case_id = cid;
      IF NOT FOUND THEN
        RAISE EXCEPTION 'case "%" does not exist', cid USING ERRCODE = 'OG002';
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

-- The rebuilt projection and the comparison gain the two columns.
CREATE OR REPLACE VIEW og.case_rebuilt AS
  WITH last AS (
    SELECT DISTINCT ON (case_id) case_id, detail, source_system, source_event_id
      FROM og.ledger WHERE kind = 'decision' AND case_id IS NOT NULL
     ORDER BY case_id, ledger_id DESC
  ), opened AS (
    SELECT d.case_id, d.detail AS dd, d.source_system, d.source_event_id, d.batch_id
      FROM og.ledger d WHERE d.kind = 'decision' AND d.detail ->> 'kind' = 'KIND_OPEN_CASE'
  )
  SELECT o.case_id, b.shard, o.dd ->> 'district' AS district_code, o.dd ->> 'grid' AS area_code,
         o.dd ->> 'category' AS category_code, last.detail ->> 'state' AS state,
         last.detail ->> 'unit' AS unit_code, (last.detail ->> 'rule_id')::bigint AS rule_id,
         (last.detail ->> 'rule_version')::integer AS rule_version,
         coalesce(oe.detail #>> '{report,title}', oe.detail #>> '{sensor_alert,title}') AS title,
         coalesce(oe.detail #>> '{report,channel}', 'CHANNEL_SENSOR') AS channel,
         o.source_system, o.source_event_id, (oe.detail ->> 'time')::timestamptz AS occurred_at,
         (o.dd ->> 'opened')::timestamptz AS opened_at,
         (last.detail ->> 'deadline')::timestamptz AS deadline_at,
         (last.detail ->> 'closed')::timestamptz AS closed_at,
         coalesce((last.detail ->> 'contacts')::integer, 1) AS contacts,
         le.recorded_at AS updated_at, le.ledger_id AS last_ledger_id,
         coalesce((last.detail ->> 'escalation_level')::integer, 0) AS escalation_level,
         last.detail ->> 'supervisor' AS supervisor_unit
    FROM opened o
    JOIN og.batch b ON b.batch_id = o.batch_id
    JOIN last ON last.case_id = o.case_id
    JOIN og.ledger oe ON oe.kind = 'event' AND oe.source_system = o.source_system
                     AND oe.source_event_id = o.source_event_id
    JOIN og.ledger le ON le.kind = 'event' AND le.source_system = last.source_system
                     AND le.source_event_id = last.source_event_id;

CREATE OR REPLACE VIEW audit.cases AS
  SELECT c.case_id, c.district_code, left(c.area_code, 9) AS street_code,
         left(c.area_code, 12) AS community_code, c.area_code, c.category_code, c.state,
         c.unit_code, c.rule_id, c.rule_version, c.title, c.channel, c.source_system,
         c.source_event_id, c.occurred_at, c.opened_at, c.deadline_at, c.closed_at,
         c.contacts, c.updated_at, c.escalation_level, c.supervisor_unit
    FROM og.case c;

-- Every escalation (督办记录): when, to which level and unit, and the deadline then.
CREATE VIEW audit.escalations AS
  SELECT l.case_id, (l.detail ->> 'escalation_level')::integer AS level,
         CASE (l.detail ->> 'escalation_level')::integer WHEN 1 THEN 'community'
              WHEN 2 THEN 'street' ELSE 'district' END AS level_name,
         l.detail ->> 'supervisor' AS supervisor_unit,
         (l.detail ->> 'decided')::timestamptz AS escalated_at,
         (l.detail ->> 'deadline')::timestamptz AS deadline_at, l.ledger_id
    FROM og.ledger l
   WHERE l.kind = 'decision' AND l.detail ->> 'kind' = 'KIND_ESCALATE';

-- The clock of every open case: green under 80 % of its time limit, yellow up to 100 %,
-- red past the deadline.
CREATE VIEW audit.case_clocks AS
  SELECT case_id, district_code, unit_code, state, opened_at, deadline_at, escalation_level,
         CASE WHEN deadline_at IS NULL THEN NULL
              WHEN now() >= deadline_at THEN 'red'
              WHEN now() >= opened_at + (deadline_at - opened_at) * 0.8 THEN 'yellow'
              ELSE 'green' END AS colour
    FROM og.case
   WHERE state NOT IN ('resolved', 'checked', 'closed', 'evaluated', 'voided');

CREATE VIEW audit."督办记录" AS SELECT * FROM audit.escalations;
CREATE VIEW audit."案件时钟" AS SELECT * FROM audit.case_clocks;
COMMENT ON VIEW audit.escalations IS '督办记录: every escalation of an overdue case';
COMMENT ON VIEW audit.case_clocks IS '案件时钟: green / yellow / red clock of every open case';
GRANT SELECT ON ALL TABLES IN SCHEMA audit TO onegrid_auditor;

CREATE OR REPLACE VIEW audit.projection_differences AS
  (SELECT 'ledger' AS side, * FROM (SELECT * FROM og.case_rebuilt EXCEPT SELECT * FROM og.case) a)
  UNION ALL
  (SELECT 'live', * FROM (SELECT * FROM og.case EXCEPT SELECT * FROM og.case_rebuilt) b);
