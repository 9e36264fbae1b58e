-- og.chain_link(chain, seq, batch, prev): the format-2 link of chain `chain` for batch
-- `batch`, numbered `seq`, after a link whose hash is `prev`: the whole og.chain row
-- (created_at now()). Whoever owns the database can recompute a link with it (that is why
-- archive signs links: og.sign_link). It and og.end_batch make links from the same parts,
-- which hold the format described below: og.district_records and og.shard_records (each
-- record's canonical text and digest, a link's digests in order), og.link_hash (the
-- link's hash). og.end_batch makes a batch's district links from the digests archive made
-- of the rows it stored set-based (checked against the rows) and one pass over its other
-- ledger rows, and its event keys' records from their ledger rows (its batch's keys were
-- stored with those values in the same transaction); this reads every row and each key as
-- stored.
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
-- PL/pgSQL with a generic plan for each kind of chain, kept for the session: planning a
-- query over every ledger partition costs more than running it for a small batch.

CREATE OR REPLACE FUNCTION og.chain_link(p_chain text, p_seq bigint, p_batch bigint, p_prev bytea)
  RETURNS og.chain
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, og, pg_temp SET plan_cache_mode = force_generic_plan AS $$
DECLARE
  digests bytea := ''::bytea;
  nrows integer := 0;
  first_id bigint;
  last_id bigint;
  nrecords integer := 0;
BEGIN
  IF p_chain LIKE 'shard:%' THEN
    SELECT s.digests, s.records INTO digests, nrecords FROM og.shard_records(p_batch) s;
  ELSE
    -- Every row of the batch, whenever it was recorded; no row: a link of no record.
    SELECT d.ledger_digests || d.key_digests, d.rows, d.first_ledger_id, d.last_ledger_id,
           d.records
      INTO digests, nrows, first_id, last_id, nrecords
      FROM og.district_records(p_batch, '-infinity', false, 0, '{}') d
     WHERE d.district_code = p_chain;
    IF NOT FOUND THEN
      digests := ''::bytea;
      nrows := 0;
      nrecords := 0;
    END IF;
  END IF;
  RETURN (p_chain, p_seq, p_batch, p_prev, og.link_hash(p_prev, p_chain, p_seq, p_batch, digests),
          nrows, first_id, last_id, now(), 2, nrecords)::og.chain;
END $$;
