-- audit.case_timeline (案件时间线): each case's full timeline: every event and every
-- decision, in the order recorded.

CREATE OR REPLACE VIEW audit.case_timeline AS
  SELECT l.case_id, l.ledger_id, l.recorded_at, l.kind, l.event_type, l.source_system,
         l.source_event_id,
         l.detail ->> 'state' AS state, l.detail ->> 'previous_state' AS previous_state,
         l.detail ->> 'unit' AS unit, (l.detail ->> 'rule_id')::bigint AS rule_id,
         (l.detail ->> 'rule_version')::integer AS rule_version,
         (l.detail ->> 'decided')::timestamptz AS decided_at,
         (l.detail ->> 'deadline')::timestamptz AS deadline_at,
         l.detail
    FROM og.ledger l
   WHERE l.case_id IS NOT NULL;

CREATE OR REPLACE VIEW audit."案件时间线" AS SELECT * FROM audit.case_timeline;
COMMENT ON VIEW audit.case_timeline IS '案件时间线: every event and decision of each case';
GRANT SELECT ON audit.case_timeline, audit."案件时间线" TO onegrid_auditor;
