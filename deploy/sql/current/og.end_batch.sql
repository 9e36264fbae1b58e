-- og.end_batch(): called by archive last in each batch, before COMMIT: appends one link
-- (og.chain_link) to the chain of each district the batch wrote ledger rows for, then one
-- to its shard's chain, and moves each chain's head (og.chain_head). Returns the links, for
-- archive to sign (og.sign_link).
-- The head of each chain is locked while its link is added, so two archives never fork a
-- chain. Chains are locked in order of their names (districts before shards), so batches
-- committing at once never deadlock, and districts never wait for each other; batches of
-- one shard do wait for each other's shard link (one dispatch feeds a shard, so they
-- rarely meet).

CREATE OR REPLACE FUNCTION og.end_batch() RETURNS SETOF og.chain
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp AS $$
DECLARE
  bid bigint := currval('og.batch_id_seq');
  c text;
  head og.chain_head;
  link og.chain;
BEGIN
  -- Name order is lock order: digits (districts) sort before 'shard:', so the shard's link
  -- is made after, and covers, the district links.
  FOR c IN SELECT d FROM (SELECT DISTINCT l.district_code FROM og.ledger l WHERE l.batch_id = bid
                          UNION
                          SELECT 'shard:' || b.shard FROM og.batch b WHERE b.batch_id = bid) x(d)
            ORDER BY d COLLATE "C" LOOP
    INSERT INTO og.chain_head VALUES (c, 0, '\x0000000000000000000000000000000000000000000000000000000000000000')
      ON CONFLICT DO NOTHING;
    -- Locks the head: a concurrent batch of the same chain waits here, then sees the
    -- head this one leaves (READ COMMITTED re-reads the updated row).
    SELECT * INTO head FROM og.chain_head h WHERE h.district_code = c FOR UPDATE;
    link := og.chain_link(c, head.seq + 1, bid, head.hash);
    INSERT INTO og.chain SELECT link.*;
    UPDATE og.chain_head h SET seq = link.seq, hash = link.hash WHERE h.district_code = c;
    RETURN NEXT link;
  END LOOP;
END $$;

REVOKE ALL ON FUNCTION og.end_batch() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION og.end_batch() TO onegrid_writer;
