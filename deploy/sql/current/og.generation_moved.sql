-- og.generation_moved(counter): the highest value any generation of this database moved
-- counter to (og.database_generation.moved: 'epoch', 'case_number', 'feed_seq', or a
-- sequence's name), 0 if none did. og.new_generation moves each counter above it too;
-- og.take_epoch starts a shard's epochs, and dispatch every district's case numbers,
-- above it.

CREATE OR REPLACE FUNCTION og.generation_moved(p_counter text) RETURNS bigint
LANGUAGE sql STABLE SET search_path = pg_catalog, og, pg_temp AS $$
  SELECT coalesce(max((g.moved -> p_counter ->> 1)::bigint), 0) FROM og.database_generation g
$$;

REVOKE ALL ON FUNCTION og.generation_moved(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION og.generation_moved(text) TO onegrid_reader, onegrid_writer;
