-- og.pending_exists(): whether the current transaction has added rows to
-- og.assignment_pending, by the index on xact (og.pending_rows says why).

CREATE OR REPLACE FUNCTION og.pending_exists() RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, og, pg_temp
SET enable_seqscan = off AS $$
BEGIN
  RETURN EXISTS (SELECT 1 FROM og.assignment_pending p WHERE p.xact = pg_current_xact_id());
END $$;

REVOKE ALL ON FUNCTION og.pending_exists() FROM PUBLIC;
