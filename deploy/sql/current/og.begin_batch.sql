-- og.begin_batch(shard, epoch, archive): opens an archive batch; returns its batch_id,
-- which the og.store_* functions and og.end_batch of the same transaction use
-- (currval('og.batch_id_seq')). Refuses a stale epoch (SQLSTATE OG001), and holds a share
-- lock on the epoch row until commit, so a dispatch taking a new epoch (og.take_epoch)
-- waits for this batch and then loads state that includes it. Makes sure this month's
-- ledger partition exists, and makes next month's ahead of time when it can at once.
--
-- Making a partition takes an ACCESS EXCLUSIVE lock on og.ledger, which waits for every
-- reader of the ledger (an auditor's `audit verify`, pg_dump) and, while it waits, holds
-- up every later one. Left to the first batch of a month, that batch waits (until
-- archive's lock_timeout_ms, then again and again) for as long as such a reader runs.
-- Made ahead by any batch of the month before, with a lock wait of at most 50 ms and in a
-- subtransaction whose failure changes nothing, it is there when the month begins. A
-- session tries at most once a minute (og.partition_tried_at), so that while a long
-- reader runs the batches do not each hold up the ledger's other users for 50 ms. A
-- failure other than the wait (another archive made it first; a row of that month in
-- og.ledger_default) is a WARNING in the server's log, never the batch's failure: the
-- month's own partition, when it is due, is made whatever it takes.

CREATE OR REPLACE FUNCTION og.begin_batch(p_shard text, p_epoch bigint, p_archive text)
  RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp AS $$
DECLARE
  cur bigint;
  id bigint;
  next_month timestamptz := (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month')
                            AT TIME ZONE 'UTC';
  waits text := current_setting('lock_timeout');
  tried text := current_setting('og.partition_tried_at', true);
  now_s bigint := extract(epoch FROM clock_timestamp())::bigint;
BEGIN
  SELECT epoch INTO cur FROM og.dispatch_epoch WHERE shard = p_shard FOR SHARE;
  IF cur IS NULL OR cur <> p_epoch THEN
    RAISE EXCEPTION 'stale dispatch epoch % for shard "%" (current %)', p_epoch, p_shard, cur
      USING ERRCODE = 'OG001';
  END IF;
  PERFORM og.ensure_ledger_partition(now());
  IF to_regclass(format('og.ledger_%s', to_char(next_month AT TIME ZONE 'UTC', 'YYYYMM'))) IS NULL
     AND (coalesce(tried, '') !~ '^[0-9]+$' OR tried::bigint <= now_s - 60)
  THEN
    PERFORM set_config('og.partition_tried_at', now_s::text, false);
    BEGIN
      PERFORM set_config('lock_timeout', '50ms', true);
      PERFORM og.ensure_ledger_partition(next_month);
      PERFORM set_config('lock_timeout', waits, true);
    EXCEPTION
      WHEN lock_not_available OR duplicate_table THEN
        NULL; -- the subtransaction's SET is undone with it; a later batch tries again
      WHEN OTHERS THEN
        RAISE WARNING 'og.begin_batch: next month''s ledger partition not made ahead: % (SQLSTATE %)',
          SQLERRM, SQLSTATE;
    END;
  END IF;
  INSERT INTO og.batch (shard, epoch, archive) VALUES (p_shard, p_epoch, p_archive)
    RETURNING batch_id INTO id;
  RETURN id;
END $$;

REVOKE ALL ON FUNCTION og.begin_batch(text, bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION og.begin_batch(text, bigint, text) TO onegrid_writer;
