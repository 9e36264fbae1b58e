-- audit.returns (退回记录): every return: which unit returned which case as not its remit,
-- and where it went instead (a returned case is re-routed at once).

CREATE OR REPLACE VIEW audit.returns AS
  SELECT l.case_id, l.detail ->> 'returned_by' AS returned_by, l.detail ->> 'unit' AS rerouted_to,
         (l.detail ->> 'rule_id')::bigint AS rule_id, e.detail #>> '{status,note}' AS reason,
         (l.detail ->> 'decided')::timestamptz AS returned_at, l.ledger_id
    FROM og.ledger l
    JOIN og.ledger e ON e.kind = 'event' AND e.source_system = l.source_system
                    AND e.source_event_id = l.source_event_id
   WHERE l.kind = 'decision' AND l.detail ? 'returned_by';

CREATE OR REPLACE VIEW audit."退回记录" AS SELECT * FROM audit.returns;
COMMENT ON VIEW audit.returns IS '退回记录: cases returned as not the unit''s remit, and where they went';
GRANT SELECT ON audit.returns, audit."退回记录" TO onegrid_auditor;
