-- og.case_report_rebuilt: the reports of every case (og.case_report) rebuilt from the
-- ledger alone, as archive stores them:
--   * the decision that first put a report in a case: one opening a case for it
--     (KIND_OPEN_CASE, 'opened': the case's grid, the report's time, else the case's
--     opening, its position) or one merging it into an open case (KIND_MERGE, 'merged':
--     og.case_report_merged); a later one for the same report changes nothing (the stores'
--     ON CONFLICT DO NOTHING);
--   * then the last decision that split it off into a case of its own (a KIND_OPEN_CASE
--     with split_from, naming the report by report_source and report_event_id): 'split',
--     that case, that decision's ledger row; the report's own facts stay.
-- Its columns are og.case_report's, in the same order. audit.report_projection_differences
-- compares the two; `onegridctl rebuild-cases --apply` replaces og.case_report with it.

CREATE OR REPLACE VIEW og.case_report_rebuilt AS
  WITH d AS MATERIALIZED (
    SELECT l.ledger_id, l.source_system, l.source_event_id, l.detail
      FROM og.ledger l
     WHERE l.kind = 'decision' AND l.detail ->> 'kind' IN ('KIND_OPEN_CASE', 'KIND_MERGE')),
  joined AS (
    SELECT DISTINCT ON (d.source_system, d.source_event_id) d.*
      FROM d
     WHERE NOT d.detail ? 'split_from'
     ORDER BY d.source_system, d.source_event_id, d.ledger_id),
  split AS (
    SELECT DISTINCT ON (d.detail ->> 'report_source', d.detail ->> 'report_event_id')
           d.detail ->> 'report_source' AS source_system,
           d.detail ->> 'report_event_id' AS source_event_id,
           d.detail ->> 'case_id' AS case_id, d.ledger_id
      FROM d
     WHERE d.detail ? 'split_from'
     ORDER BY d.detail ->> 'report_source', d.detail ->> 'report_event_id', d.ledger_id DESC),
  first AS (
    SELECT j.source_system, j.source_event_id, j.detail ->> 'case_id' AS case_id,
           'opened' AS joined, o.area_code,
           coalesce((e.detail ->> 'time')::timestamptz, o.opened_at) AS occurred_at, o.latitude,
           o.longitude, og.event_severity(e.detail) AS severity, j.ledger_id
      FROM joined j
      JOIN og.ledger e ON e.kind = 'event' AND e.source_system = j.source_system
                      AND e.source_event_id = j.source_event_id,
           LATERAL og.case_opening(j.detail, e.detail) o
     WHERE j.detail ->> 'kind' = 'KIND_OPEN_CASE'
    UNION ALL
    SELECT r.*
      FROM joined j
      JOIN og.ledger e ON e.kind = 'event' AND e.source_system = j.source_system
                      AND e.source_event_id = j.source_event_id,
           LATERAL og.case_report_merged(j.source_system, j.source_event_id, e.detail, j.detail,
                                         j.ledger_id) r
     WHERE j.detail ->> 'kind' = 'KIND_MERGE')
  SELECT f.source_system, f.source_event_id, coalesce(s.case_id, f.case_id) AS case_id,
         CASE WHEN s.case_id IS NULL THEN f.joined ELSE 'split' END AS joined, f.area_code,
         f.occurred_at, f.latitude, f.longitude, f.severity,
         coalesce(s.ledger_id, f.ledger_id) AS ledger_id
    FROM first f
    LEFT JOIN split s ON s.source_system = f.source_system
                     AND s.source_event_id = f.source_event_id;
