-- audit.case_reports (关联诉求): every report of every case (og.case_report): how it joined
-- (opened it, merged into it, split off into it), from which grid system and area.

CREATE OR REPLACE VIEW audit.case_reports AS
  SELECT r.case_id, r.source_system, r.source_event_id, r.joined, r.area_code, r.occurred_at,
         r.latitude, r.longitude, r.severity, r.ledger_id
    FROM og.case_report r;

CREATE OR REPLACE VIEW audit."关联诉求" AS SELECT * FROM audit.case_reports;
COMMENT ON VIEW audit.case_reports IS '关联诉求: every report of every case: opened it, merged into it, or split off into it';
GRANT SELECT ON audit.case_reports, audit."关联诉求" TO onegrid_auditor;
