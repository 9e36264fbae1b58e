-- audit.merged_reports (合并记录): every report that joined an existing case (最多跑一次):
-- which report, from which grid system and area, into which case, the case's contacts
-- after it, and whether it was split off again (audit.splits).

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
COMMENT ON VIEW audit.merged_reports IS '合并记录: reports that joined an open case (最多跑一次)';
GRANT SELECT ON audit.merged_reports, audit."合并记录" TO onegrid_auditor;
