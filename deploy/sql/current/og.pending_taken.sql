-- og.pending_taken(): deletes the current transaction's rows of og.assignment_pending, by
-- the index on xact (og.pending_rows says why), and returns them in the order they were
-- added (n); NULL when there are none. og.assignment_number numbers them.
--
-- RETURNING p: rows of og.assignment_pending's own type. (RETURNING p.* made rows of an
-- anonymous type, which PL/pgSQL converted to the array's through their text, row by row:
-- record_out and record_in, each row's times printed and parsed again: about 3 % of
-- archive's backend.)

CREATE OR REPLACE FUNCTION og.pending_taken() RETURNS og.assignment_pending[]
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, og, pg_temp
SET enable_seqscan = off AS $$
DECLARE
  held og.assignment_pending[];
BEGIN
  WITH d AS (DELETE FROM og.assignment_pending p WHERE p.xact = pg_current_xact_id() RETURNING p)
  SELECT array_agg(d.p ORDER BY (d.p).n) INTO held FROM d;
  RETURN held;
END $$;

REVOKE ALL ON FUNCTION og.pending_taken() FROM PUBLIC;
