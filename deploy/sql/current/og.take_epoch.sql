-- og.take_epoch(shard, holder): a starting dispatch takes the next epoch for its shard
-- (fencing) before it loads state; archive commits a batch only while its epoch is the
-- current one (og.begin_batch). Waits for any batch of the old epoch still being committed
-- (its share lock on the epoch row), so the state loaded afterwards includes it.

CREATE OR REPLACE FUNCTION og.take_epoch(p_shard text, p_holder text) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp AS $$
  INSERT INTO og.dispatch_epoch AS d (shard, epoch, holder, taken_at)
    -- A shard's first epoch is above those the database's generation moved past (a
    -- shard first started in time a restore lost may have had some: og.new_generation).
    VALUES (p_shard, 1 + og.generation_moved('epoch'), p_holder, now())
    ON CONFLICT (shard) DO UPDATE SET epoch = d.epoch + 1, holder = excluded.holder,
                                      taken_at = excluded.taken_at
    RETURNING epoch
$$;

REVOKE ALL ON FUNCTION og.take_epoch(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION og.take_epoch(text, text) TO onegrid_reader;
