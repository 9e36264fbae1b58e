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
-- new_generation takes). Granted to dispatch's role, which can fence any shard's dispatch
-- already (og.take_epoch); a generation it opens is a row of og.database_generation that
-- names it, and a WARNING in the server's log.
-- NULL, opening nothing, for an epoch above the server's time in microseconds: the
-- database never gives one (an epoch is the time it was taken, og.take_epoch, or one above
-- the last), unless its clock stepped back since.

CREATE OR REPLACE FUNCTION og.epoch_went_back(p_shard text, p_epoch bigint, p_holder text)
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
    'dispatch %s holds epoch %s of shard %s, which the database says it has not given (its current: %s): it went back in time and kept its identity (a snapshot put back, a restore into the same database)',
    left(p_holder, 128), p_epoch, left(p_shard, 128), coalesce(cur::text, 'none')));
END $$;

REVOKE ALL ON FUNCTION og.epoch_went_back(text, bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION og.epoch_went_back(text, bigint, text) TO onegrid_reader;
