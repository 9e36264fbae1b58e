-- og.end_batch(): called by archive last in each batch, before COMMIT: appends one link to
-- the chain of each district the batch wrote ledger rows for, then one to its shard's
-- chain, and moves each chain's head (og.chain_head). Returns the links, for archive to
-- sign (og.sign_link). The links are those og.chain_link makes (format 2), from the same
-- parts: the digests of every district's records come from one pass over the batch's
-- ledger rows (og.district_records), made before any head is locked, each event key's
-- record from its event's ledger row (keys_from_ledger: the batch's keys were stored in
-- this transaction with their ledger rows' values), not read back; those of the shard's
-- (og.shard_records) once the district links it covers are in og.chain.
-- The head of each chain is locked while its link is added, so two archives never fork a
-- chain. Chains are locked in order of their names, districts first, then the shard (a
-- district code is made of digits, so that is also byte order), so batches committing at
-- once never deadlock, and districts never wait for each other; batches of one shard do
-- wait for each other's shard link (one dispatch feeds a shard, so they rarely meet).
-- The batch's rows are those og.store_* wrote in this transaction, all recorded at now():
-- only the ledger partitions from this month on are read for them.
-- A generic plan, kept for the session (as og.chain_link's): planning the pass over the
-- ledger takes ~1 ms (~3 ms with 42 monthly partitions), ten times what running it takes
-- for a small batch, and a custom plan would prune no more partitions (now() is known
-- only when the plan starts, which prunes them then).

CREATE OR REPLACE FUNCTION og.end_batch() RETURNS SETOF og.chain
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
  bid bigint := currval('og.batch_id_seq');
  c record;
  head og.chain_head;
  link og.chain;
BEGIN
  FOR c IN SELECT * FROM (
             SELECT r.district_code AS chain, false AS shard, r.digests, r.rows,
                    r.first_ledger_id, r.last_ledger_id, r.records
               FROM og.district_records(bid, now(), true) r
             UNION ALL
             SELECT 'shard:' || b.shard, true, NULL, 0, NULL, NULL, NULL
               FROM og.batch b WHERE b.batch_id = bid) x
           ORDER BY x.shard, x.chain COLLATE "C" LOOP
    IF c.shard THEN
      SELECT s.digests, s.records INTO c.digests, c.records FROM og.shard_records(bid) s;
    END IF;
    -- Locks the head: a concurrent batch of the same chain waits here, then sees the
    -- head this one leaves (READ COMMITTED re-reads the updated row). A chain's first
    -- link makes its head first (or waits for the batch that is making it).
    SELECT * INTO head FROM og.chain_head h WHERE h.district_code = c.chain FOR UPDATE;
    IF NOT FOUND THEN
      INSERT INTO og.chain_head
        VALUES (c.chain, 0, '\x0000000000000000000000000000000000000000000000000000000000000000')
        ON CONFLICT DO NOTHING;
      SELECT * INTO head FROM og.chain_head h WHERE h.district_code = c.chain FOR UPDATE;
    END IF;
    INSERT INTO og.chain
      VALUES (c.chain, head.seq + 1, bid, head.hash,
              og.link_hash(head.hash, c.chain, head.seq + 1, bid, c.digests),
              c.rows, c.first_ledger_id, c.last_ledger_id, now(), 2, c.records)
      RETURNING * INTO link;
    UPDATE og.chain_head h SET seq = link.seq, hash = link.hash WHERE h.district_code = c.chain;
    RETURN NEXT link;
  END LOOP;
END $$;

REVOKE ALL ON FUNCTION og.end_batch() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION og.end_batch() TO onegrid_writer;
