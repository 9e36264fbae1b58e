-- audit.splits (拆分记录): every split: which merged report left which case for which new
-- case, who split it and why.

CREATE OR REPLACE VIEW audit.splits AS
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

CREATE OR REPLACE VIEW audit."拆分记录" AS SELECT * FROM audit.splits;
COMMENT ON VIEW audit.splits IS '拆分记录: merged reports split off into a case of their own';
GRANT SELECT ON audit.splits, audit."拆分记录" TO onegrid_auditor;
