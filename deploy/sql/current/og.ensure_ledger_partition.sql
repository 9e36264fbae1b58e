-- og.ensure_ledger_partition(ts): makes sure the month (UTC) containing ts has its own
-- partition of og.ledger, og.ledger_YYYYMM, with the append-only TRUNCATE trigger (a
-- TRUNCATE of a partition does not fire its parent's statement trigger). Owner's rights:
-- og.begin_batch calls it for the current month in every batch.

CREATE OR REPLACE FUNCTION og.ensure_ledger_partition(ts timestamptz) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp AS $$
DECLARE
  m date := date_trunc('month', ts AT TIME ZONE 'UTC')::date;
  t text := format('ledger_%s', to_char(m, 'YYYYMM'));
BEGIN
  IF to_regclass('og.' || t) IS NULL THEN
    EXECUTE format('CREATE TABLE og.%I PARTITION OF og.ledger FOR VALUES FROM (%L) TO (%L)',
                   t, (m::timestamp AT TIME ZONE 'UTC'),
                   ((m + interval '1 month')::timestamp AT TIME ZONE 'UTC'));
    EXECUTE format('CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON og.%I
                    FOR EACH STATEMENT EXECUTE FUNCTION og.refuse_change()', t);
  END IF;
END $$;

REVOKE ALL ON FUNCTION og.ensure_ledger_partition(timestamptz) FROM PUBLIC;
