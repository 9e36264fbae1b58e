-- og.epoch_went_back(shard, epoch, archive): archive met a record of a dispatch epoch the
-- database has not given: p_epoch is above the shard's current one (or the shard has
-- none). The database gives epochs in order (og.take_epoch) and never takes one back, so
-- it has gone back to before it gave that one and kept its identity, which
-- og.generation_check cannot see: a snapshot of the data directory put back, a restore into
-- the same database. The lost time may have given case numbers, feed seqs and ids too, and
-- a dispatch restarted now would take the very epoch the record has, and have the lost
-- time's records stored as its own. So it opens a new generation (og.new_generation),
-- which moves every counter past what the lost time can have given: the record, and every
-- other of its epoch, is older than the shard's epoch then, and dropped as stale.
-- Returns the database's generation: the one it opened, or the current one when the epoch
-- is not above the shard's (any more: another archive opened it first; both wait on the
-- lock new_generation takes). NULL, opening nothing, for an epoch above the server's time
-- in microseconds: the database never gives one (new_generation moves epochs to that time,
-- take_epoch adds one at each start), so the record's is not the database's (a dispatch
-- of another database; a forged frame), and it is no sign of going back.

CREATE OR REPLACE FUNCTION og.epoch_went_back(p_shard text, p_epoch bigint, p_archive text)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp AS $$
DECLARE
  cur bigint;
BEGIN
  IF p_epoch > (extract(epoch FROM clock_timestamp()) * 1000000)::bigint THEN
    RETURN NULL;
  END IF;
  LOCK TABLE og.database_generation IN EXCLUSIVE MODE;
  SELECT epoch INTO cur FROM og.dispatch_epoch WHERE shard = p_shard;
  IF p_epoch <= coalesce(cur, og.generation_moved('epoch')) THEN
    RETURN (SELECT max(generation) FROM og.database_generation);
  END IF;
  RETURN og.new_generation(format(
    'archive %s received records of shard %s epoch %s, which the database has not given (its current: %s): it went back in time and kept its identity (a snapshot put back, a restore into the same database)',
    left(p_archive, 128), left(p_shard, 128), p_epoch, coalesce(cur::text, 'none')));
END $$;

REVOKE ALL ON FUNCTION og.epoch_went_back(text, bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION og.epoch_went_back(text, bigint, text) TO onegrid_writer;
