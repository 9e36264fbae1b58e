-- og.epoch_went_back(shard, epoch, holder): a dispatch holding p_epoch, which it took from
-- this database (og.take_epoch), finds the shard's current epoch below it (or none). The
-- database gives epochs in order and never takes one back, so it has gone back to before
-- it gave that one and kept its identity, which og.generation_check cannot see: a snapshot
-- of the data directory put back, a restore into the same database. The lost time may have
-- given case numbers, feed seqs and ids too, and a dispatch started now would take the very
-- epoch that dispatch holds. So it opens a new generation (og.new_generation), which moves
-- every counter past what the lost time can have given: the records of that epoch archive
-- holds are older than the shard's epoch then, and dropped as stale; the dispatch exits to
-- load the database again.
-- Only dispatch can tell: it took its epoch from this database. archive cannot (an epoch
-- above the current one may be another database's dispatch's, sent to this archive).
-- Returns the database's generation: the one it opened, or the current one when the epoch
-- is not above the shard's (any more: a caller opened it first; both wait on the lock
-- new_generation takes). The shard's epoch ends above p_epoch either way, even where the
-- server's clock went back with the data (a VM snapshot reverted with its memory) and the
-- generation's epochs, taken from that clock, would not pass it: archive's records of it
-- are stale then.
-- Granted to dispatch's role alone. The database cannot check the claim: a dispatch login
-- can open a generation at will (it can fence any shard's dispatch already, og.take_epoch);
-- each is a row of og.database_generation that names it, and a WARNING in the server's log.

CREATE OR REPLACE FUNCTION og.epoch_went_back(p_shard text, p_epoch bigint, p_holder text)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp AS $$
DECLARE
  cur bigint;
  g integer;
BEGIN
  LOCK TABLE og.database_generation IN EXCLUSIVE MODE;
  SELECT epoch INTO cur FROM og.dispatch_epoch WHERE shard = p_shard;
  IF p_epoch <= coalesce(cur, og.generation_moved('epoch')) THEN
    RETURN (SELECT max(generation) FROM og.database_generation);
  END IF;
  g := og.new_generation(format(
    'dispatch %s holds epoch %s of shard %s, which the database says it has not given (its current: %s): it went back in time and kept its identity (a snapshot put back, a restore into the same database)',
    left(p_holder, 128), p_epoch, left(p_shard, 128), coalesce(cur::text, 'none')));
  UPDATE og.dispatch_epoch SET epoch = p_epoch + 1 WHERE shard = p_shard AND epoch <= p_epoch;
  RETURN g;
END $$;

REVOKE ALL ON FUNCTION og.epoch_went_back(text, bigint, text) FROM PUBLIC, onegrid_writer;
GRANT EXECUTE ON FUNCTION og.epoch_went_back(text, bigint, text) TO onegrid_reader;
