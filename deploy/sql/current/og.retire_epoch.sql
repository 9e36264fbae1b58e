-- og.retire_epoch(shard, epoch, archive): archive retires a dispatch epoch after it left a
-- record of it out (the record named a case or report the database does not have, SQLSTATE
-- OG002: dispatch decided it against memory that disagrees with the committed state).
-- Whatever else that dispatch decided from the same memory may carry the left-out record's
-- effect on another case (a joint meeting naming the missing case and a live one, then a
-- status of the live case that only the meeting allows), so none of it may be stored: the
-- shard's epoch moves on, and og.begin_batch refuses every later batch of the old one
-- (OG001), as it does a fenced dispatch's. archive calls it after committing what came
-- before the left-out record and before answering any of it; the restarted dispatch takes
-- the next epoch (og.take_epoch) and decides the resent events against committed state.
-- Nothing when the epoch is no longer the current one (retired already, or a dispatch took
-- a newer one). Returns whether it retired the epoch.

CREATE OR REPLACE FUNCTION og.retire_epoch(p_shard text, p_epoch bigint, p_archive text)
RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp AS $$
  WITH r AS (
    UPDATE og.dispatch_epoch d
       SET epoch = d.epoch + 1,
           holder = format('retired by archive %s: a record of epoch %s named a case or report the database does not have',
                           left(p_archive, 128), p_epoch),
           taken_at = now()
     WHERE d.shard = p_shard AND d.epoch = p_epoch
    RETURNING 1)
  SELECT EXISTS (SELECT FROM r)
$$;

REVOKE ALL ON FUNCTION og.retire_epoch(text, bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION og.retire_epoch(text, bigint, text) TO onegrid_writer;
