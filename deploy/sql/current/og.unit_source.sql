-- og.unit_source(unit): the source system a unit's status updates come from: the one
-- granted the unit by its own code (og.source_unit_grant), else by the longest prefix,
-- else the one with the most action grants (the district's main platform). NULL when no
-- source speaks for the unit. For operators' scripts (and the quickstart); dispatch does
-- its own check.

CREATE OR REPLACE FUNCTION og.unit_source(p_unit text) RETURNS text
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
