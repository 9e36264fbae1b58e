-- og.end_batch(given_upto, districts, ledger, keys, rows, events, firsts, lasts, check), or
-- og.end_batch() (nothing given: every digest made here): called by archive last in each
-- batch, before COMMIT: appends one link to
-- the chain of each district the batch wrote ledger rows for, then one to its shard's
-- chain, and moves each chain's head (og.chain_head). Returns the links, for archive to
-- sign (og.sign_link). The links are those og.chain_link makes (format 2), from the same
-- parts: the digests of every district's records are archive's for the rows it gives
-- (below) and come from one pass over the batch's other ledger rows (og.district_records),
-- made before any head is locked, each event key's record from its event's ledger row
-- (keys_from_ledger: the batch's keys were stored in this transaction with their ledger
-- rows' values), not read back; those of the shard's (og.shard_records) once the district
-- links it covers are in og.chain.
-- The head of each chain is locked while its link is added, so two archives never fork a
-- chain. Chains are locked in order of their names, districts first, then the shard (a
-- district code is made of digits, so that is also byte order), so batches committing at
-- once never deadlock, and districts never wait for each other; batches of one shard do
-- wait for each other's shard link (one dispatch feeds a shard, so they rarely meet).
-- The batch's rows are those og.store_* wrote in this transaction, all recorded at now():
-- only the ledger partitions from this month on are read for them.
--
-- Digests archive made. SHA-256 of a ledger row's canonical text costs this server 4.5 µs
-- (its jsonb as text 1.25, the netstrings 1.3, sha256() 1.1), two rows and a key an event:
-- the most costly part of storing a batch that is not the rows themselves. archive knows
-- every value of the rows og.store_opened and og.store_moved wrote (it sent them, in the
-- text jsonb gives back; they return the ledger ids; recorded_at is now(), which archive
-- reads in the batch), so it makes their digests, and those of their keys, itself
-- (daemons/archive/store.c). Those rows come first in the batch (their ledger ids are at
-- most `given_upto`); for each district, `districts[i]` with `ledger[i]` (its given rows'
-- digests by ledger_id), `keys[i]` (their events' keys' digests, by ledger_id), `rows[i]`
-- and `events[i]` (how many of each) and `firsts[i]`, `lasts[i]` (their first and last
-- ledger_id). The rows after `given_upto` (og.store_event's, og.store_decision's) have
-- their digests made here, as always.
-- What archive gives is checked against the batch as stored, in every batch: the number
-- of given rows and events of each district, their first and last ledger_id, a digest's
-- 32 bytes each, and the digest of one of each district's given rows, picked at random,
-- made here. `check` (archive asks it of its first batch on a connection and one in 64)
-- makes every digest here and compares them all. On any difference the links are made of
-- this server's digests, the transaction's setting og.given_digests says why (archive
-- reads it before COMMIT: a client's client_min_messages can hide a WARNING) and a WARNING
-- with SQLSTATE OG005 says it in the server's log; archive then makes no more digests
-- until it restarts. A difference the checks do not see (in a row of a batch not checked
-- that was not picked: a change of some rows only between archive and the table, or a
-- value archive writes otherwise than jsonb gives it back) would make a link
-- `onegridctl audit verify` reports as not matching its records: verify makes every
-- digest from the rows, independently of both.
-- og.end_batch() makes every digest here (each argument has a default: nothing given).
-- (Before, og.end_batch() was a function of its own: the file drops it first.)
-- A generic plan, kept for the session (as og.chain_link's): planning the pass over the
-- ledger takes ~1 ms (~3 ms with 42 monthly partitions), ten times what running it takes
-- for a small batch, and a custom plan would prune no more partitions (now() is known
-- only when the plan starts, which prunes them then).

DROP FUNCTION IF EXISTS og.end_batch();

CREATE OR REPLACE FUNCTION og.end_batch(p_given_upto bigint DEFAULT 0,
                                         p_districts text[] DEFAULT '{}',
                                         p_ledger bytea[] DEFAULT '{}',
                                         p_keys bytea[] DEFAULT '{}',
                                         p_rows integer[] DEFAULT '{}',
                                         p_events integer[] DEFAULT '{}',
                                         p_firsts bigint[] DEFAULT '{}',
                                         p_lasts bigint[] DEFAULT '{}',
                                         p_check boolean DEFAULT false)
  RETURNS SETOF og.chain
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
  bid bigint := currval('og.batch_id_seq');
  c record;
  head og.chain_head;
  link og.chain;
  chains text[];
  digests bytea[];
  nrows integer[];
  firsts bigint[];
  lasts bigint[];
  nrecords integer[];
  differs text; -- why archive's digests are not used
  made bytea[];
  upto bigint := coalesce(p_given_upto, 0);
  picked bigint[];
  picked_at integer[];
  given bytea[];
  sampled bytea[];
BEGIN
  -- Each district's link: archive's digests of the rows it gives (ledger ids up to
  -- upto: counted here, s), then this server's of the rest (r), for the ledger rows and
  -- then for their keys (each part by ledger_id); g: what archive says of its rows. One
  -- given row of each district is picked at random (its ledger_id and its place).
  SELECT coalesce(array_agg(d.chain ORDER BY d.chain COLLATE "C"), '{}'),
         array_agg(d.digests ORDER BY d.chain COLLATE "C"),
         array_agg(d.rows ORDER BY d.chain COLLATE "C"),
         array_agg(d.first ORDER BY d.chain COLLATE "C"),
         array_agg(d.last ORDER BY d.chain COLLATE "C"),
         array_agg(d.records ORDER BY d.chain COLLATE "C"),
         CASE WHEN bool_or(d.differs) THEN 'the rows it gave are not those stored' END,
         coalesce(array_agg(d.picked ORDER BY d.picked) FILTER (WHERE d.picked IS NOT NULL),
                  '{}'),
         array_agg(d.picked_at ORDER BY d.picked) FILTER (WHERE d.picked IS NOT NULL),
         array_agg(d.ledger ORDER BY d.picked) FILTER (WHERE d.picked IS NOT NULL)
    INTO chains, digests, nrows, firsts, lasts, nrecords, differs, picked, picked_at, given
    FROM (SELECT coalesce(s.district_code, r.district_code, g.district) AS chain,
                 coalesce(g.ledger, ''::bytea) || coalesce(r.ledger_digests, ''::bytea)
                   || coalesce(g.keys, ''::bytea) || coalesce(r.key_digests, ''::bytea) AS digests,
                 coalesce(s.rows, 0) + coalesce(r.rows, 0) AS rows,
                 coalesce(s.first, r.first_ledger_id) AS first,
                 coalesce(r.last_ledger_id, s.last) AS last,
                 coalesce(s.rows + s.events, 0) + coalesce(r.records, 0) AS records,
                 s.rows IS DISTINCT FROM g.rows OR s.events IS DISTINCT FROM g.events
                   OR s.first IS DISTINCT FROM g.first OR s.last IS DISTINCT FROM g.last
                   OR octet_length(g.ledger) IS DISTINCT FROM 32 * g.rows
                   OR octet_length(g.keys) IS DISTINCT FROM 32 * g.events AS differs,
                 s.ids[s.pick] AS picked, s.pick AS picked_at, g.ledger
            FROM (SELECT l.district_code, count(*)::integer AS rows,
                         (count(*) FILTER (WHERE l.kind = 'event'))::integer AS events,
                         min(l.ledger_id) AS first, max(l.ledger_id) AS last,
                         array_agg(l.ledger_id ORDER BY l.ledger_id) AS ids,
                         1 + floor(random() * count(*))::integer AS pick
                    FROM og.ledger l
                   WHERE l.batch_id = bid AND l.recorded_at >= now() AND l.ledger_id <= upto
                     AND l.district_code NOT LIKE 'shard:%'
                   GROUP BY l.district_code) s
            FULL JOIN unnest(p_districts, p_ledger, p_keys, p_rows, p_events, p_firsts, p_lasts)
                        AS g(district, ledger, keys, rows, events, first, last)
              ON g.district = s.district_code
            FULL JOIN og.district_records(bid, now(), true, upto, '{}') r
              ON r.district_code = coalesce(s.district_code, g.district)) d;
  -- The picked rows' digests made here, against archive's at their places.
  IF differs IS NULL AND cardinality(picked) > 0 AND NOT coalesce(p_check, false) THEN
    SELECT array_agg(r.ledger_digests ORDER BY r.first_ledger_id) INTO sampled
      FROM og.district_records(bid, now(), true, 9223372036854775807, picked) r;
    IF sampled IS DISTINCT FROM (SELECT array_agg(substring(x.given FROM 32 * (x.at - 1) + 1
                                                            FOR 32) ORDER BY x.n)
                                   FROM unnest(given, picked_at) WITH ORDINALITY
                                          AS x(given, at, n)) THEN
      differs := 'a digest of a row picked at random';
    END IF;
  END IF;
  IF differs IS NOT NULL OR coalesce(p_check, false) THEN
    SELECT coalesce(array_agg(r.district_code ORDER BY r.district_code COLLATE "C"), '{}'),
           array_agg(r.ledger_digests || r.key_digests ORDER BY r.district_code COLLATE "C"),
           array_agg(r.rows ORDER BY r.district_code COLLATE "C"),
           array_agg(r.first_ledger_id ORDER BY r.district_code COLLATE "C"),
           array_agg(r.last_ledger_id ORDER BY r.district_code COLLATE "C"),
           array_agg(r.records ORDER BY r.district_code COLLATE "C")
      INTO chains, made, nrows, firsts, lasts, nrecords
      FROM og.district_records(bid, now(), true, 0, '{}') r;
    IF differs IS NULL AND made IS DISTINCT FROM digests THEN
      differs := 'a digest, all compared';
    END IF;
    digests := made;
    IF differs IS NOT NULL THEN
      PERFORM set_config('og.given_digests', differs, true);
      RAISE WARNING
        'og.end_batch: archive''s digests of batch % differ from this server''s (%)', bid,
        differs
        USING ERRCODE = 'OG005',
              HINT = 'The links are made of this server''s digests; archive makes no more.';
    END IF;
  END IF;
  FOR c IN SELECT * FROM (
             SELECT d.chain, false AS shard, d.digests, d.rows, d.first_ledger_id,
                    d.last_ledger_id, d.records
               FROM unnest(chains, digests, nrows, firsts, lasts, nrecords)
                      AS d(chain, digests, rows, first_ledger_id, last_ledger_id, records)
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

REVOKE ALL ON FUNCTION og.end_batch(bigint, text[], bytea[], bytea[], integer[], integer[],
                                    bigint[], bigint[], boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION og.end_batch(bigint, text[], bytea[], bytea[], integer[], integer[],
                                       bigint[], bigint[], boolean) TO onegrid_writer;
