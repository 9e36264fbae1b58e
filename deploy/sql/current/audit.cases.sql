-- audit.cases (案件): every case as it stands, without any personal data. A case's street
-- and community codes are prefixes of its area code. stage and clock are dispatch's
-- conclusions (migration 023): what the case waits for ('handling', 'checking', 'final')
-- and its time limit ('running', 'paused', 'none').

CREATE OR REPLACE VIEW audit.cases AS
  SELECT c.case_id, c.district_code, left(c.area_code, 9) AS street_code,
         left(c.area_code, 12) AS community_code, c.area_code, c.category_code, c.state,
         c.unit_code, c.rule_id, c.rule_version, c.title, c.channel, c.source_system,
         c.source_event_id, c.occurred_at, c.opened_at, c.deadline_at, c.closed_at,
         c.contacts, c.updated_at, c.escalation_level, c.supervisor_unit, c.severity,
         c.paused_at, c.extension_days, c.returned_units, c.stage, c.clock
    FROM og.case c;

CREATE OR REPLACE VIEW audit."案件" AS SELECT * FROM audit.cases;
COMMENT ON VIEW audit.cases IS '案件: every case as it stands, without personal data';
GRANT SELECT ON audit.cases, audit."案件" TO onegrid_auditor;
