-- og.chain_link(chain, seq, batch, prev): the format-2 link of chain `chain` for batch
-- `batch`, numbered `seq`, after a link whose hash is `prev`: the whole og.chain row
-- (created_at now()). og.end_batch makes every link with it; whoever owns the database can
-- recompute a link with it too (that is why archive signs links: og.sign_link).
-- `onegridctl audit verify` does not call it: it rebuilds every text and hash itself from
-- the audit views.
--
-- What a link covers. Each archive batch appends
--   - to the chain of each district it wrote ledger rows for (named by the district code):
--     the batch's ledger rows of that district, then the event key of each of those rows
--     that is an event (og.event_key, the idempotency record);
--   - to the chain of its dispatch shard, named 'shard:' || og.batch.shard (a district
--     code is 6 digits, so the names never meet): the batch's own og.batch row, the
--     rejections it recorded (og.rejection, which have no district), and the links it
--     appended to district chains (chain, link number, hash). Every batch appends to its
--     shard's chain, even one that stored nothing new (all duplicates), so every batch row
--     is covered; and a district link that is removed or recomputed breaks the shard's
--     chain too.
--
-- Canonical text, format 2. A record is a list of fields, each written as a netstring
-- (og.ns: its length in bytes as a decimal number, ':', its bytes, ',') or as '-' when
-- NULL; the first field names the record's kind. Fields can therefore hold any character
-- (format 1, og.ledger_canonical, joined fields with U+001F, which a field may contain).
-- Times are whole microseconds since 1970-01-01 UTC, bytea in lowercase hex, jsonb as
-- PostgreSQL's text of it:
--   ledger     'ledger', ledger_id, recorded_at, batch_id, district_code, kind, case_id,
--              source_system, source_event_id, event_type, detail, body
--   event key  'event_key', source_system, source_event_id, district_code, case_id,
--              ledger_id, stored_at
--   batch      'batch', batch_id, shard, epoch, archive, committed_at
--   rejection  'rejection', rejection_id, batch_id, received_at, recorded_at, publisher,
--              source_system, source_event_id, reason, detail, raw_size, raw_sha256 (not
--              the bounded copy raw: it may hold personal data and must stay erasable;
--              raw_sha256 is the digest of the whole bytes received)
--   link       'chain_link', chain, seq, hash (of a district link, in its shard's link)
-- A record's digest is SHA-256 of its canonical text (UTF-8).
--   link hash = SHA-256(previous link's hash (32 zero bytes for a chain's first link)
--                       || 'link', chain, seq, batch_id as netstrings
--                       || the digests of the records it covers, in the order above:
--                          ledger rows by ledger_id, then event keys by ledger_id; or the
--                          batch row, rejections by rejection_id, then links by chain
--                          name (byte order))
-- Links made before migration 015 are format 1 (og.ledger_canonical); a district's first
-- format-2 link links onto the head its format-1 links left.
--
-- PL/pgSQL with a generic plan, kept for the session: planning the query (two scans of
-- every ledger partition) took ~2 ms, more than running it for a small batch; a custom
-- plan per call is what PL/pgSQL would choose, as the generic one cannot leave out the
-- branches of the other kind of chain (they cost nothing at run time: one-time filters).

CREATE OR REPLACE FUNCTION og.chain_link(p_chain text, p_seq bigint, p_batch bigint, p_prev bytea)
  RETURNS og.chain
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, og, pg_temp SET plan_cache_mode = force_generic_plan AS $$
DECLARE
  link og.chain;
BEGIN
  -- Each record's canonical text (see the top of this file). Values that are costly to
  -- make (jsonb and bytea as text, times as microseconds) are made once per row, behind
  -- OFFSET 0: og.ns, inlined, refers to its argument three times.
  WITH r (section, id, name, is_row, digest) AS (
    SELECT 1, l.ledger_id, '', true,
           sha256(convert_to(og.ns('ledger') || og.ns(l.ledger_id::text) || og.ns(x.recorded)
                             || og.ns(l.batch_id::text) || og.ns(l.district_code) || og.ns(l.kind)
                             || og.ns(l.case_id) || og.ns(l.source_system)
                             || og.ns(l.source_event_id) || og.ns(l.event_type) || og.ns(x.detail)
                             || og.ns(x.body), 'UTF8'))
      FROM og.ledger l,
           LATERAL (SELECT ((extract(epoch FROM l.recorded_at) * 1000000)::bigint)::text,
                           l.detail::text, encode(l.body, 'hex') OFFSET 0) x(recorded, detail, body)
     WHERE l.batch_id = p_batch AND l.district_code = p_chain
    UNION ALL
    SELECT 2, k.ledger_id, '', false,
           sha256(convert_to(og.ns('event_key') || og.ns(k.source_system)
                             || og.ns(k.source_event_id) || og.ns(k.district_code)
                             || og.ns(k.case_id) || og.ns(k.ledger_id::text) || og.ns(x.stored),
                             'UTF8'))
      FROM og.ledger l,
           -- One key per event row, by og.event_key's primary key. With a plain join, the
           -- generic plan hash-joined a sequential scan of every event key ever stored
           -- whenever the ledger's statistics were off (a partition autovacuum had not
           -- analysed yet: 298 such scans, 1.5 million rows read, in 16,000 events paced
           -- in), so a batch's link cost grew with the whole record. LIMIT 1 (the key is
           -- unique anyway) keeps it an index lookup per row of the batch, whatever the
           -- estimates.
           LATERAL (SELECT * FROM og.event_key k
                     WHERE k.source_system = l.source_system
                       AND k.source_event_id = l.source_event_id AND k.ledger_id = l.ledger_id
                     LIMIT 1) k,
           LATERAL (SELECT ((extract(epoch FROM k.stored_at) * 1000000)::bigint)::text OFFSET 0) x(stored)
     WHERE l.batch_id = p_batch AND l.district_code = p_chain AND l.kind = 'event'
    UNION ALL
    SELECT 1, b.batch_id, '', false,
           sha256(convert_to(og.ns('batch') || og.ns(b.batch_id::text) || og.ns(b.shard)
                             || og.ns(b.epoch::text) || og.ns(b.archive)
                             || og.ns(((extract(epoch FROM b.committed_at) * 1000000)::bigint)::text),
                             'UTF8'))
      FROM og.batch b
     WHERE p_chain LIKE 'shard:%' AND b.batch_id = p_batch
    UNION ALL
    SELECT 2, j.rejection_id, '', false,
           sha256(convert_to(og.ns('rejection') || og.ns(j.rejection_id::text)
                             || og.ns(j.batch_id::text) || og.ns(x.received) || og.ns(x.recorded)
                             || og.ns(j.publisher) || og.ns(j.source_system)
                             || og.ns(j.source_event_id) || og.ns(j.reason) || og.ns(j.detail)
                             || og.ns(j.raw_size::text) || og.ns(encode(j.raw_sha256, 'hex')),
                             'UTF8'))
      FROM og.rejection j,
           LATERAL (SELECT ((extract(epoch FROM j.received_at) * 1000000)::bigint)::text,
                           ((extract(epoch FROM j.recorded_at) * 1000000)::bigint)::text
                    OFFSET 0) x(received, recorded)
     WHERE p_chain LIKE 'shard:%' AND j.batch_id = p_batch
    UNION ALL
    SELECT 3, 0, c.district_code, false,
           sha256(convert_to(og.ns('chain_link') || og.ns(c.district_code) || og.ns(c.seq::text)
                             || og.ns(encode(c.hash, 'hex')), 'UTF8'))
      FROM og.chain c
     WHERE p_chain LIKE 'shard:%' AND c.batch_id = p_batch AND c.district_code NOT LIKE 'shard:%'
  )
  SELECT p_chain, p_seq, p_batch, p_prev,
         sha256(p_prev || convert_to(og.ns('link') || og.ns(p_chain) || og.ns(p_seq::text)
                                     || og.ns(p_batch::text), 'UTF8')
                || coalesce(string_agg(r.digest, ''::bytea
                                       ORDER BY r.section, r.id, r.name COLLATE "C"), ''::bytea)),
         (count(*) FILTER (WHERE r.is_row))::integer,
         min(r.id) FILTER (WHERE r.is_row), max(r.id) FILTER (WHERE r.is_row),
         now(), 2::smallint, count(*)::integer
    INTO link
    FROM r;
  RETURN link;
END $$;
