-- 016: who may send what. The authenticated source system (the CURVE key's source, never a
-- payload field) decides what an event may do. A status update is accepted only from a
-- source granted the unit it speaks for (og.source_unit_grant); evaluations, joint-meeting
-- decisions, splits, mediation outcomes and decisions on extension requests only from a
-- source granted that action (og.source_action_grant). Anything else is refused
-- REASON_UNAUTHORISED_SOURCE and recorded. Reports and sensor alerts need only a
-- registered source, as before. dispatch loads both tables at start and on reload.
--
-- Upgrading: both tables start empty, so every status update and case action is refused
-- until the operator grants them (docs/operating.md, "Who may send what").

CREATE TABLE og.source_unit_grant (
  source_system text NOT NULL REFERENCES og.source_system (code),
  -- a handling unit's code, or a prefix of codes ending in '*' ("CGJ-*")
  unit_pattern  text NOT NULL CHECK (unit_pattern ~ '^[A-Za-z0-9_.-]{1,64}$'
                                     OR unit_pattern ~ '^[A-Za-z0-9_.-]{0,63}\*$'),
  note          text,
  PRIMARY KEY (source_system, unit_pattern)
);

CREATE TABLE og.source_action_grant (
  source_system text NOT NULL REFERENCES og.source_system (code),
  action        text NOT NULL CHECK (action IN ('evaluation', 'meeting_decision', 'split',
                                                'mediation', 'extension_decision')),
  note          text,
  PRIMARY KEY (source_system, action)
);

GRANT SELECT ON og.source_unit_grant, og.source_action_grant TO onegrid_reader;

-- The source system a unit's status updates come from: the one granted the unit by its
-- own code, else by the longest prefix, else the one with the most action grants (the
-- district's main platform). For operators' scripts (and the quickstart); dispatch does
-- its own check. NULL when no source speaks for the unit.
CREATE FUNCTION og.unit_source(p_unit text) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, og, pg_temp AS $$
  SELECT g.source_system FROM og.source_unit_grant g
   WHERE g.unit_pattern = p_unit
      OR (right(g.unit_pattern, 1) = '*' AND starts_with(p_unit, left(g.unit_pattern, -1)))
   ORDER BY g.unit_pattern = p_unit DESC, length(g.unit_pattern) DESC,
            (SELECT count(*) FROM og.source_action_grant a
              WHERE a.source_system = g.source_system) DESC,
            g.source_system
   LIMIT 1
$$;

-- For auditors: every right a source system holds (谁可以代表哪个单位, 谁可以做什么).
CREATE VIEW audit.source_grants AS
  SELECT g.source_system, s.name AS source_name, 'unit'::text AS grant_kind,
         g.unit_pattern AS granted, g.note
    FROM og.source_unit_grant g JOIN og.source_system s ON s.code = g.source_system
  UNION ALL
  SELECT g.source_system, s.name, 'action', g.action, g.note
    FROM og.source_action_grant g JOIN og.source_system s ON s.code = g.source_system;
GRANT SELECT ON audit.source_grants TO onegrid_auditor;
