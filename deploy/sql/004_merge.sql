-- 004: 最多跑一次 (a resident should need to come at most once): a report of a problem
-- that already has an open case joins that case instead of opening another (dispatch's
-- merge rule: same category, areas nested within one community, within a time window,
-- and within a distance when both reports have coordinates). The case keeps a count of
-- contacts; each merge is a decision of kind KIND_MERGE in the ledger. Cases keep the
-- position of the report that opened them, for the distance test after a restart.

SET LOCAL ROLE onegrid_owner;

ALTER TABLE og.case ADD COLUMN latitude double precision,
                    ADD COLUMN longitude double precision;

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
         last.detail ->> 'supervisor' AS supervisor_unit,
         (oe.detail #>> '{location,latitude}')::double precision AS latitude,
         (oe.detail #>> '{location,longitude}')::double precision AS longitude
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

-- Every report that joined an existing case (合并记录): which report, from which grid
-- system and area, into which case, and the case's contacts after it.
CREATE VIEW audit.merged_reports AS
  SELECT l.case_id, l.source_system, l.source_event_id, l.detail ->> 'report_area' AS report_area,
         e.detail #>> '{report,channel}' AS channel,
         (l.detail ->> 'decided')::timestamptz AS merged_at,
         (l.detail ->> 'contacts')::integer AS contacts_after, l.ledger_id
    FROM og.ledger l
    JOIN og.ledger e ON e.kind = 'event' AND e.source_system = l.source_system
                    AND e.source_event_id = l.source_event_id
   WHERE l.kind = 'decision' AND l.detail ->> 'kind' = 'KIND_MERGE';
CREATE VIEW audit."合并记录" AS SELECT * FROM audit.merged_reports;
COMMENT ON VIEW audit.merged_reports IS '合并记录: reports that joined an open case (最多跑一次)';
GRANT SELECT ON ALL TABLES IN SCHEMA audit TO onegrid_auditor;
