-- og.take_epoch(shard, holder): a starting dispatch takes the next epoch for its shard
-- (fencing) before it loads state; archive commits a batch only while its epoch is the
-- current one (og.begin_batch). Waits for any batch of the old epoch still being committed
-- (its share lock on the epoch row), so the state loaded afterwards includes it.
-- An epoch is the time it was taken, in microseconds since 1970 (or one above the last,
-- should the server's clock stand still or step back): never one given before, even by a
-- database that went back in time and kept its identity (a snapshot put back), where "one
-- above the last" would give again the epoch of a dispatch of the lost time, and archive
-- would store the records it still holds of it, decided from memory the database no
-- longer has (a review's reproduction). The records of such a dispatch are stale then, and
-- dropped.

CREATE OR REPLACE FUNCTION og.take_epoch(p_shard text, p_holder text) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp AS $$
  INSERT INTO og.dispatch_epoch AS d (shard, epoch, holder, taken_at)
    -- A shard's first epoch is above those the database's generation moved past (a
    -- shard first started in time a restore lost may have had some: og.new_generation).
    VALUES (p_shard, greatest(1 + og.generation_moved('epoch'),
                              (extract(epoch FROM clock_timestamp()) * 1000000)::bigint),
            p_holder, now())
    ON CONFLICT (shard) DO UPDATE
      SET epoch = greatest(d.epoch + 1,
                           (extract(epoch FROM clock_timestamp()) * 1000000)::bigint),
          holder = excluded.holder, taken_at = excluded.taken_at
    RETURNING epoch
$$;

REVOKE ALL ON FUNCTION og.take_epoch(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION og.take_epoch(text, text) TO onegrid_reader;
