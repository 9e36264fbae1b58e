-- og.district_records(batch, since, keys_from_ledger, after, also): what the link of each district
-- chain for batch `batch` covers (og.chain_link: the district's ledger rows of the batch,
-- then the event key of each of those rows that is an event), in one pass over the
-- batch's ledger rows:
-- one row per district, with the digests of its ledger rows (by ledger_id) and those of
-- their event keys (by ledger_id), the two parts of the link's digests in its order, the
-- number of ledger rows and their first and last ledger_id, and the number of records. A
-- district the batch wrote no row for has no row here.
-- Only the rows whose ledger_id is above `after` (0: all) or in `also` are read:
-- og.end_batch takes the digests of those up to it from archive, which made them from the
-- values it stored, and checks some of them (`also`).
-- Rows filed under a shard's chain name are not a district's (a shard's link hashes no
-- ledger row; `onegridctl audit verify` names such a row as a stray). (Its arguments and
-- columns changed: the file drops it first.)
-- Only the rows recorded at `since` or later are read: og.chain_link gives '-infinity'
-- (every row); og.end_batch gives now(), the start of the transaction that began the
-- batch, when og.store_* recorded every row of it (recorded_at = now()), so that only the
-- ledger partitions of this month and later are scanned, not one per month of the record.
-- An event's key (og.event_key) is read by its primary key when `keys_from_ledger` is false
-- (og.chain_link: any batch, as the record holds it now). og.end_batch passes true: its
-- batch's keys were all stored in this transaction, by og.store_event or og.store_records,
-- each from the values its event's ledger row has (the same source_system,
-- source_event_id, district_code, case_id, ledger_id, and stored_at = recorded_at = now()),
-- and a key is never changed (trigger append_only): so the key's record is made from the
-- ledger row, without a lookup per event (6 µs of the 10 µs a key's record cost). A writer
-- that stored a key otherwise would make links `onegridctl audit verify` refuses, which
-- reads every key itself.
-- Inlined into its callers (SQL, STABLE), whose cached plans prune the partitions when
-- they start.

DROP FUNCTION IF EXISTS og.district_records(bigint, timestamptz);
DROP FUNCTION IF EXISTS og.district_records(bigint, timestamptz, boolean);
DROP FUNCTION IF EXISTS og.district_records(bigint, timestamptz, boolean, bigint);
DROP FUNCTION IF EXISTS og.district_records(bigint, timestamptz, boolean, bigint, bigint[]);

CREATE OR REPLACE FUNCTION og.district_records(p_batch bigint, p_since timestamptz,
                                               p_keys_from_ledger boolean, p_after bigint,
                                               p_also bigint[])
  RETURNS TABLE (district_code text, ledger_digests bytea, key_digests bytea, rows integer,
                 first_ledger_id bigint, last_ledger_id bigint, records integer)
LANGUAGE sql STABLE AS $$
  -- Each record's canonical text (og.chain_link). Values that are costly to make (jsonb
  -- and bytea as text, times as microseconds) are made once per row, behind OFFSET 0:
  -- og.ns, inlined, refers to its argument three times.
  SELECT l.district_code,
         string_agg(r.digest, ''::bytea ORDER BY l.ledger_id),
         coalesce(string_agg(k.digest, ''::bytea ORDER BY l.ledger_id), ''::bytea),
         count(*)::integer, min(l.ledger_id), max(l.ledger_id),
         (count(*) + count(k.digest))::integer
    FROM og.ledger l
    CROSS JOIN LATERAL (
      SELECT ((extract(epoch FROM l.recorded_at) * 1000000)::bigint)::text, l.detail::text,
             encode(l.body, 'hex') OFFSET 0
    ) x(recorded, detail, body)
    CROSS JOIN LATERAL (
      SELECT sha256(convert_to(og.ns('ledger') || og.ns(l.ledger_id::text) || og.ns(x.recorded)
                               || og.ns(l.batch_id::text) || og.ns(l.district_code) || og.ns(l.kind)
                               || og.ns(l.case_id) || og.ns(l.source_system)
                               || og.ns(l.source_event_id) || og.ns(l.event_type) || og.ns(x.detail)
                               || og.ns(x.body), 'UTF8'))
    ) r(digest)
    -- The event row's key: its values from the ledger row (p_keys_from_ledger), or read.
    LEFT JOIN LATERAL (
      SELECT sha256(convert_to(og.ns('event_key') || og.ns(k.source_system)
                               || og.ns(k.source_event_id) || og.ns(k.district_code)
                               || og.ns(k.case_id) || og.ns(k.ledger_id::text) || og.ns(k.stored),
                               'UTF8'))
        FROM (SELECT l.source_system, l.source_event_id, l.district_code, l.case_id, l.ledger_id,
                     x.recorded
               WHERE p_keys_from_ledger AND l.kind = 'event'
              UNION ALL
              -- One key per event row, by og.event_key's primary key. With a plain join,
              -- the generic plan hash-joined a sequential scan of every event key ever
              -- stored whenever the ledger's statistics were off (a partition autovacuum
              -- had not analysed yet: 298 such scans, 1.5 million rows read, in 16,000
              -- events paced in), so a batch's link cost grew with the whole record.
              -- LIMIT 1 (the key is unique anyway) keeps it an index lookup per row of the
              -- batch, whatever the estimates.
              SELECT k.source_system, k.source_event_id, k.district_code, k.case_id, k.ledger_id,
                     s.stored
                FROM (SELECT * FROM og.event_key k
                       WHERE NOT p_keys_from_ledger AND l.kind = 'event'
                         AND k.source_system = l.source_system
                         AND k.source_event_id = l.source_event_id AND k.ledger_id = l.ledger_id
                       LIMIT 1) k,
                     LATERAL (SELECT ((extract(epoch FROM k.stored_at) * 1000000)::bigint)::text
                              OFFSET 0) s(stored)
             ) k(source_system, source_event_id, district_code, case_id, ledger_id, stored)
    ) k(digest) ON true
   WHERE l.batch_id = p_batch AND l.recorded_at >= p_since
     AND (l.ledger_id > p_after OR l.ledger_id = ANY (p_also))
     AND l.district_code NOT LIKE 'shard:%'
   GROUP BY l.district_code
$$;

REVOKE ALL ON FUNCTION og.district_records(bigint, timestamptz, boolean, bigint, bigint[])
  FROM PUBLIC;
