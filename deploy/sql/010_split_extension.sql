-- 010: the case keeps what every new clock and every re-routing needs, and two operator
-- actions become events of their own.
-- * Severity: a case keeps the CAP severity it was filed with, so a clock started after a
--   return, a reopening or a meeting's assignment uses the same limit as the first one.
-- * Returned units (退回): every unit that returned the case; it is never routed back to
--   any of them, so a case cannot bounce between two units.
-- * Extension requests (申请延期): while a unit's request is pending the clock is paused
--   (paused_at, extension_days); a supervising unit approves (the deadline moves by the
--   working days granted after the clock resumes) or refuses (the clock resumes).
-- * Split (拆分): a report merged into a case (最多跑一次) can be split off again by an
--   operator's event; it becomes a case of its own. og.case_report keeps every report's
--   own facts (area, time, position, severity) and the case it belongs to now, so dispatch
--   can do that after a restart.

SET LOCAL ROLE onegrid_owner;

ALTER TABLE og.case ADD COLUMN severity integer CHECK (severity BETWEEN 1 AND 4),
                    ADD COLUMN paused_at timestamptz,
                    ADD COLUMN extension_days integer CHECK (extension_days BETWEEN 1 AND 30),
                    ADD COLUMN returned_units text[] NOT NULL DEFAULT '{}';

-- Every report of every case: the one that opened it, those merged into it, and those
-- split off into a case of their own. A projection of the ledger, like og.case.
CREATE TABLE og.case_report (
  source_system   text NOT NULL,
  source_event_id text NOT NULL,
  case_id         text NOT NULL,
  joined          text NOT NULL CHECK (joined IN ('opened', 'merged', 'split')),
  area_code       text NOT NULL,
  occurred_at     timestamptz NOT NULL,
  latitude        double precision,
  longitude       double precision,
  severity        integer,
  ledger_id       bigint NOT NULL, -- the decision that put the report where it is
  PRIMARY KEY (source_system, source_event_id)
);
CREATE INDEX ON og.case_report (case_id);
GRANT SELECT ON og.case_report TO onegrid_reader;

-- The CAP severity of an event's report or sensor alert as a number (1 extreme .. 4 minor).
CREATE FUNCTION og.event_severity(e jsonb) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
  SELECT array_position(ARRAY['SEVERITY_EXTREME', 'SEVERITY_SEVERE', 'SEVERITY_MODERATE',
                              'SEVERITY_MINOR'],
                        coalesce(e #>> '{report,severity}', e #>> '{sensor_alert,severity}'))
$$;

-- The reports stored before this migration.
INSERT INTO og.case_report
  SELECT DISTINCT ON (d.source_system, d.source_event_id) d.source_system, d.source_event_id,
         d.case_id, CASE WHEN d.detail ->> 'kind' = 'KIND_MERGE' THEN 'merged' ELSE 'opened' END,
         coalesce(d.detail ->> 'report_area', d.detail ->> 'grid'),
         (e.detail ->> 'time')::timestamptz,
         (e.detail #>> '{location,latitude}')::double precision,
         (e.detail #>> '{location,longitude}')::double precision,
         og.event_severity(e.detail), d.ledger_id
    FROM og.ledger d
    JOIN og.ledger e ON e.kind = 'event' AND e.source_system = d.source_system
                    AND e.source_event_id = d.source_event_id
   WHERE d.kind = 'decision' AND d.detail ->> 'kind' IN ('KIND_OPEN_CASE', 'KIND_MERGE')
   ORDER BY d.source_system, d.source_event_id, d.ledger_id;

-- Sets the case columns a decision carries (p_case: absolute values) on case cid.
CREATE FUNCTION og.apply_case(cid text, p_case jsonb, p_ledger_id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og AS $$
DECLARE
  r og.case := jsonb_populate_record(NULL::og.case, p_case);
BEGIN
  UPDATE og.case c SET state = r.state, unit_code = r.unit_code, rule_id = r.rule_id,
                       rule_version = r.rule_version, deadline_at = r.deadline_at,
                       closed_at = r.closed_at, contacts = coalesce(r.contacts, c.contacts),
                       escalation_level = coalesce(r.escalation_level, 0),
                       supervisor_unit = r.supervisor_unit, severity = r.severity,
                       paused_at = r.paused_at, extension_days = r.extension_days,
                       returned_units = coalesce(r.returned_units, '{}'),
                       updated_at = now(), last_ledger_id = p_ledger_id
    WHERE c.case_id = cid;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'case "%" does not exist', cid USING ERRCODE = 'OG002';
  END IF;
END $$;
REVOKE ALL ON FUNCTION og.apply_case(text, jsonb, bigint) FROM PUBLIC;

-- store_event: the new columns; a case opened by a split takes the merged report's facts
-- from its ledger row; every report's place is kept in og.case_report.
CREATE OR REPLACE FUNCTION og.store_event(p_source text, p_event_id text, p_type text, p_district text,
                               p_event_detail jsonb, p_event_body bytea,
                               p_decision_detail jsonb, p_decision_body bytea,
                               p_case jsonb, p_opens boolean, p_contact jsonb,
                               OUT outcome text, OUT case_id text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og AS $$
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
    SELECT 'duplicate', k.case_id INTO outcome, case_id
      FROM og.event_key k WHERE k.source_system = p_source AND k.source_event_id = p_event_id;
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

-- store_decision: the new columns.
CREATE OR REPLACE FUNCTION og.store_decision(p_source text, p_event_id text, p_type text,
                                             p_district text, p_decision_detail jsonb,
                                             p_decision_body bytea, p_case jsonb)
  RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og AS $$
DECLARE
  cid text := p_case ->> 'case_id';
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
  INSERT INTO og.ledger VALUES
    (nextval('og.ledger_id_seq'), now(), currval('og.batch_id_seq'), p_district, 'decision', cid,
     p_source, p_event_id, p_type, p_decision_detail, p_decision_body);
  PERFORM og.apply_case(cid, p_case, eid);
  RETURN 'stored';
END $$;

-- The rebuilt projection gains the four columns; a case split off another takes its
-- title, channel, time, position and origin from the report it was opened for.
CREATE OR REPLACE VIEW og.case_rebuilt AS
  WITH last AS (
    SELECT DISTINCT ON (case_id) case_id, detail, source_system, source_event_id
      FROM og.ledger WHERE kind = 'decision' AND case_id IS NOT NULL
     ORDER BY case_id, ledger_id DESC
  ), opened AS (
    SELECT d.case_id, d.detail AS dd, d.batch_id,
           coalesce(d.detail ->> 'report_source', d.source_system) AS source_system,
           coalesce(d.detail ->> 'report_event_id', d.source_event_id) AS source_event_id
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
         last.detail ->> 'supervisor' AS supervisor_unit,
         (oe.detail #>> '{location,latitude}')::double precision AS latitude,
         (oe.detail #>> '{location,longitude}')::double precision AS longitude,
         (last.detail ->> 'severity')::integer AS severity,
         (last.detail ->> 'paused_at')::timestamptz AS paused_at,
         (last.detail ->> 'extension_days')::integer AS extension_days,
         ARRAY(SELECT jsonb_array_elements_text(coalesce(last.detail -> 'returned_units',
                                                         '[]'::jsonb))) AS returned_units
    FROM opened o
    JOIN og.batch b ON b.batch_id = o.batch_id
    JOIN last ON last.case_id = o.case_id
    JOIN og.ledger oe ON oe.kind = 'event' AND oe.source_system = o.source_system
                     AND oe.source_event_id = o.source_event_id
    JOIN og.ledger le ON le.kind = 'event' AND le.source_system = last.source_system
                     AND le.source_event_id = last.source_event_id;

CREATE OR REPLACE VIEW audit.projection_differences AS
  (SELECT 'ledger' AS side, * FROM (SELECT * FROM og.case_rebuilt EXCEPT SELECT * FROM og.case) a)
  UNION ALL
  (SELECT 'live', * FROM (SELECT * FROM og.case EXCEPT SELECT * FROM og.case_rebuilt) b);

CREATE OR REPLACE VIEW audit.cases AS
  SELECT c.case_id, c.district_code, left(c.area_code, 9) AS street_code,
         left(c.area_code, 12) AS community_code, c.area_code, c.category_code, c.state,
         c.unit_code, c.rule_id, c.rule_version, c.title, c.channel, c.source_system,
         c.source_event_id, c.occurred_at, c.opened_at, c.deadline_at, c.closed_at,
         c.contacts, c.updated_at, c.escalation_level, c.supervisor_unit, c.severity,
         c.paused_at, c.extension_days, c.returned_units
    FROM og.case c;

-- A paused clock (an extension request pending) is neither green nor red.
CREATE OR REPLACE VIEW audit.case_clocks AS
  SELECT case_id, district_code, unit_code, state, opened_at, deadline_at, escalation_level,
         CASE WHEN deadline_at IS NULL THEN NULL
              WHEN paused_at IS NOT NULL THEN 'paused'
              WHEN now() >= deadline_at THEN 'red'
              WHEN now() >= opened_at + (deadline_at - opened_at) * 0.8 THEN 'yellow'
              ELSE 'green' END AS colour,
         paused_at
    FROM og.case
   WHERE state NOT IN ('resolved', 'checked', 'closed', 'evaluated', 'voided');

-- Every report of every case (关联诉求): how it joined, from which grid system and area.
CREATE VIEW audit.case_reports AS
  SELECT r.case_id, r.source_system, r.source_event_id, r.joined, r.area_code, r.occurred_at,
         r.latitude, r.longitude, r.severity, r.ledger_id
    FROM og.case_report r;
CREATE VIEW audit."关联诉求" AS SELECT * FROM audit.case_reports;
COMMENT ON VIEW audit.case_reports IS '关联诉求: every report of every case: opened it, merged into it, or split off into it';

-- Every split (拆分记录): which report left which case for which new case, and why.
CREATE VIEW audit.splits AS
  SELECT l.case_id AS from_case_id, l.detail ->> 'split_to' AS to_case_id,
         l.detail ->> 'report_source' AS report_source,
         l.detail ->> 'report_event_id' AS report_event_id,
         (l.detail ->> 'contacts')::integer AS contacts_after, e.source_system AS split_by,
         e.detail #>> '{split,note}' AS reason, (l.detail ->> 'decided')::timestamptz AS split_at,
         l.ledger_id
    FROM og.ledger l
    JOIN og.ledger e ON e.kind = 'event' AND e.source_system = l.source_system
                    AND e.source_event_id = l.source_event_id
   WHERE l.kind = 'decision' AND l.detail ->> 'kind' = 'KIND_SPLIT';
CREATE VIEW audit."拆分记录" AS SELECT * FROM audit.splits;
COMMENT ON VIEW audit.splits IS '拆分记录: merged reports split off into a case of their own';

-- Every extension request and decision (延期记录): asked by whom and for how many
-- working days, decided by whom, and the deadline before and after.
CREATE VIEW audit.extensions AS
  SELECT l.case_id, e.detail #>> '{status,status}' AS step, e.detail #>> '{status,unit}' AS unit,
         (e.detail #>> '{status,extension_working_days}')::integer AS working_days,
         e.detail #>> '{status,note}' AS note,
         (l.detail ->> 'decided')::timestamptz AS decided_at,
         (p.detail ->> 'deadline')::timestamptz AS deadline_before,
         (l.detail ->> 'deadline')::timestamptz AS deadline_after,
         (l.detail ->> 'paused_at')::timestamptz AS paused_at, l.ledger_id
    FROM og.ledger l
    JOIN og.ledger e ON e.kind = 'event' AND e.source_system = l.source_system
                    AND e.source_event_id = l.source_event_id
    LEFT JOIN LATERAL (
      SELECT q.detail FROM og.ledger q
       WHERE q.case_id = l.case_id AND q.kind = 'decision' AND q.ledger_id < l.ledger_id
       ORDER BY q.ledger_id DESC LIMIT 1) p ON true
   WHERE l.kind = 'decision' AND e.event_type = 'status'
     AND e.detail #>> '{status,status}' IN ('STATUS_EXTENSION_REQUESTED', 'STATUS_EXTENDED',
                                            'STATUS_EXTENSION_REFUSED');
CREATE VIEW audit."延期记录" AS SELECT * FROM audit.extensions;
COMMENT ON VIEW audit.extensions IS '延期记录: extension requests, approvals and refusals, with the deadline before and after';

-- The merge record shows whether the report was split off again.
CREATE OR REPLACE VIEW audit.merged_reports AS
  SELECT l.case_id, l.source_system, l.source_event_id, l.detail ->> 'report_area' AS report_area,
         e.detail #>> '{report,channel}' AS channel,
         (l.detail ->> 'decided')::timestamptz AS merged_at,
         (l.detail ->> 'contacts')::integer AS contacts_after, l.ledger_id,
         s.to_case_id AS split_to, s.split_at
    FROM og.ledger l
    JOIN og.ledger e ON e.kind = 'event' AND e.source_system = l.source_system
                    AND e.source_event_id = l.source_event_id
    LEFT JOIN audit.splits s ON s.from_case_id = l.case_id AND s.report_source = l.source_system
                            AND s.report_event_id = l.source_event_id
   WHERE l.kind = 'decision' AND l.detail ->> 'kind' = 'KIND_MERGE';

CREATE OR REPLACE VIEW audit."合并记录" AS SELECT * FROM audit.merged_reports;
CREATE OR REPLACE VIEW audit."案件时钟" AS SELECT * FROM audit.case_clocks;
CREATE OR REPLACE VIEW audit."案件" AS SELECT * FROM audit.cases;

GRANT SELECT ON ALL TABLES IN SCHEMA audit TO onegrid_auditor;
