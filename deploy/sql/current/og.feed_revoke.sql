-- og.feed_revoke(role, unit): takes unit `unit`'s assignments from login `role`; it stays
-- in onegrid_feed (with no unit left it reads nothing). Returns false when it had no such
-- grant. The owner's function.

CREATE OR REPLACE FUNCTION og.feed_revoke(p_role text, p_unit text) RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp AS $$
  WITH gone AS (
    DELETE FROM og.feed_subscriber WHERE role_name = p_role AND unit_code = p_unit RETURNING 1
  )
  SELECT count(*) > 0 FROM gone
$$;

REVOKE ALL ON FUNCTION og.feed_revoke(text, text) FROM PUBLIC;
