-- audit.rejections (退件统计): refused events by publisher and reason (no bytes: they may
-- hold personal data).

CREATE OR REPLACE VIEW audit.rejections AS
  SELECT publisher, source_system, reason, count(*) AS events, min(received_at) AS first_at,
         max(received_at) AS last_at
    FROM og.rejection
   GROUP BY publisher, source_system, reason;

CREATE OR REPLACE VIEW audit."退件统计" AS SELECT * FROM audit.rejections;
COMMENT ON VIEW audit.rejections IS '退件统计: refused events by publisher and reason';
GRANT SELECT ON audit.rejections, audit."退件统计" TO onegrid_auditor;
