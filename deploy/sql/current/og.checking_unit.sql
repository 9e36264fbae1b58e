-- og.checking_unit(case): the unit that checks (核查) a case and closes or voids it (结案,
-- 作废), for operators' scripts (and the quickstart): the supervisor of its district
-- (og.supervisor), else of its street, else of its community, never the unit that holds it
-- (a unit never checks or closes its own case: dispatch refuses that). NULL when there is
-- none. Its status updates come from og.unit_source(unit), which needs the check and close
-- actions (og.source_action_grant). dispatch does its own check.

CREATE OR REPLACE FUNCTION og.checking_unit(p_case text) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, og, pg_temp AS $$
  SELECT s.unit_code FROM og.case c
    JOIN og.supervisor s
      ON s.area_code IN (c.district_code, left(c.area_code, 9), left(c.area_code, 12))
   WHERE c.case_id = p_case AND s.unit_code IS DISTINCT FROM c.unit_code
   ORDER BY length(s.area_code)
   LIMIT 1
$$;
