-- audit.source_grants: every right a source system holds (谁可以代表哪个单位, 谁可以做什么):
-- the handling units it speaks for (og.source_unit_grant) and the case actions it may send
-- (og.source_action_grant).

CREATE OR REPLACE VIEW audit.source_grants AS
  SELECT g.source_system, s.name AS source_name, 'unit'::text AS grant_kind,
         g.unit_pattern AS granted, g.note
    FROM og.source_unit_grant g JOIN og.source_system s ON s.code = g.source_system
  UNION ALL
  SELECT g.source_system, s.name, 'action', g.action, g.note
    FROM og.source_action_grant g JOIN og.source_system s ON s.code = g.source_system;

GRANT SELECT ON audit.source_grants TO onegrid_auditor;
