-- og.begin_batch(shard, epoch, archive): opens an archive batch; returns its batch_id,
-- which the og.store_* functions and og.end_batch of the same transaction use
-- (currval('og.batch_id_seq')). Refuses a stale epoch (SQLSTATE OG001), and holds a share
-- lock on the epoch row until commit, so a dispatch taking a new epoch (og.take_epoch)
-- waits for this batch and then loads state that includes it. Makes sure this month's
-- ledger partition exists.

CREATE OR REPLACE FUNCTION og.begin_batch(p_shard text, p_epoch bigint, p_archive text)
  RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp AS $$
DECLARE
  cur bigint;
  id bigint;
BEGIN
  SELECT epoch INTO cur FROM og.dispatch_epoch WHERE shard = p_shard FOR SHARE;
  IF cur IS NULL OR cur <> p_epoch THEN
    RAISE EXCEPTION 'stale dispatch epoch % for shard "%" (current %)', p_epoch, p_shard, cur
      USING ERRCODE = 'OG001';
  END IF;
  PERFORM og.ensure_ledger_partition(now());
  INSERT INTO og.batch (shard, epoch, archive) VALUES (p_shard, p_epoch, p_archive)
    RETURNING batch_id INTO id;
  RETURN id;
END $$;

REVOKE ALL ON FUNCTION og.begin_batch(text, bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION og.begin_batch(text, bigint, text) TO onegrid_writer;
