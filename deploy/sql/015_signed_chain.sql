-- 015: a record its owner cannot rewrite unseen. Until now the table owner (or a
-- superuser) could disable the append-only triggers (or set session_replication_role =
-- replica), edit a ledger row, recompute the chain with og.ledger_canonical and sha256,
-- and `onegridctl audit verify` passed; rejections, event keys and batches were in no
-- chain at all. From this migration on:
--
-- * Links of format 2. og.chain.format says how a link was made: 1 for every link made
--   before this migration (verify recomputes them as 002 describes), 2 for every link
--   og.end_batch makes from now on. Existing chains continue: the first format-2 link of
--   a district links onto the head its format-1 links left.
--
-- * What a format-2 link covers. Each archive batch appends
--     - to the chain of each district it wrote ledger rows for (named by the district
--       code, as before): the batch's ledger rows of that district, then the event key of
--       each of those rows that is an event (og.event_key, the idempotency record);
--     - to the chain of its dispatch shard, named 'shard:' || og.batch.shard (a district
--       code is 6 digits, so the names never meet): the batch's own og.batch row, the
--       rejections it recorded (og.rejection, which have no district), and the links it
--       appended to district chains (chain, link number, hash). Every batch appends to its
--       shard's chain, even one that stored nothing new (all duplicates), so every batch
--       row is covered; and a district link that is removed or recomputed breaks the
--       shard's chain too.
--   Chains are locked in order of their names (districts before shards), so batches
--   committing at once never deadlock, and districts still never wait for each other;
--   batches of one shard do wait for each other's shard link (one dispatch feeds a
--   shard, so they rarely meet).
--
-- * Canonical text, format 2. A record is a list of fields, each written as a netstring
--   (its length in bytes as a decimal number, ':', its bytes, ',') or as '-' when NULL;
--   the first field names the record's kind. Fields can therefore hold any character
--   (format 1 joined fields with U+001F, which a field may contain). Times are whole
--   microseconds since 1970-01-01 UTC, bytea in lowercase hex, jsonb as PostgreSQL's
--   text of it:
--     ledger     'ledger', ledger_id, recorded_at, batch_id, district_code, kind, case_id,
--                source_system, source_event_id, event_type, detail, body
--     event key  'event_key', source_system, source_event_id, district_code, case_id,
--                ledger_id, stored_at
--     batch      'batch', batch_id, shard, epoch, archive, committed_at
--     rejection  'rejection', rejection_id, batch_id, received_at, recorded_at, publisher,
--                source_system, source_event_id, reason, detail, raw_size, raw_sha256
--                (not the bounded copy raw: it may hold personal data and must stay
--                erasable; raw_sha256 is the digest of the whole bytes received)
--     link       'chain_link', chain, seq, hash (of a district link, in its shard's link)
--   A record's digest is SHA-256 of its canonical text (UTF-8).
--   link hash = SHA-256(previous link's hash (32 zero bytes for a chain's first link)
--                       || 'link', chain, seq, batch_id as netstrings
--                       || the digests of the records it covers, in the order above:
--                          ledger rows by ledger_id, then event keys by ledger_id;
--                          or the batch row, rejections by rejection_id, then links by
--                          chain name (byte order))
--
-- * Signed heads. archive may hold an Ed25519 key the database never sees
--   ([archive] signing_key, `onegridctl keygen --signing`): it signs every link
--   og.end_batch returns and stores the signature with og.sign_link in the same
--   transaction (og.chain_signature: append-only, one per link, with the public key).
--   The signed message is 'onegrid.chain.head.v1', chain, seq, batch_id, format and the
--   link hash in lowercase hex, each as a netstring (daemons/common/chainsig.c).
--   `onegridctl audit verify --public-key FILE` checks every signature and that no link
--   after the first signed one is unsigned; whoever rewrites a row must recompute the
--   links after it, and cannot sign them.
--
-- The functions below are the database's own account of the format; verify does not call
-- them: it rebuilds every text and hash itself from the audit views.

SET LOCAL ROLE onegrid_owner;

-- Links ---------------------------------------------------------------------------------

-- Existing links are format 1 (no table rewrite: a constant default); every new link
-- states its format.
ALTER TABLE og.chain ADD COLUMN format smallint NOT NULL DEFAULT 1 CHECK (format IN (1, 2));
ALTER TABLE og.chain ALTER COLUMN format DROP DEFAULT;
-- How many records the link's hash covers (ledger rows and event keys; or the batch row,
-- rejections and district links). NULL for format 1, which covered ledger rows only.
ALTER TABLE og.chain ADD COLUMN records integer;
-- A shard's link covers no ledger rows: rows 0, first and last ledger id NULL.
ALTER TABLE og.chain ALTER COLUMN first_ledger_id DROP NOT NULL;
ALTER TABLE og.chain ALTER COLUMN last_ledger_id DROP NOT NULL;
COMMENT ON COLUMN og.chain.district_code IS
  'the chain: a district code, or ''shard:'' and a dispatch shard (batches and rejections)';

-- end_batch finds a batch's rejections by batch.
CREATE INDEX ON og.rejection (batch_id);

-- Canonical text, format 2 ---------------------------------------------------------------

-- A field as a netstring, or '-' for NULL.
CREATE FUNCTION og.ns(v text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN v IS NULL THEN '-' ELSE octet_length(v)::text || ':' || v || ',' END
$$;

-- The format-2 link of chain p_chain for batch p_batch, numbered p_seq, after a link whose
-- hash is p_prev: the whole og.chain row (created_at now()). end_batch makes every link
-- with it; whoever owns the database can recompute a link with it too (that is why
-- links are signed).
-- PL/pgSQL with a generic plan, kept for the session: planning the query (two scans of
-- every ledger partition) took ~2 ms, more than running it for a small batch; a custom
-- plan per call is what PL/pgSQL would choose, as the generic one cannot leave out the
-- branches of the other kind of chain (they cost nothing at run time: one-time filters).
CREATE FUNCTION og.chain_link(p_chain text, p_seq bigint, p_batch bigint, p_prev bytea)
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
      FROM og.ledger l
      JOIN og.event_key k ON k.source_system = l.source_system
                         AND k.source_event_id = l.source_event_id AND k.ledger_id = l.ledger_id,
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

-- Called by archive last in each batch, before COMMIT: one link to the chain of each
-- district the batch wrote ledger rows for, then one to its shard's chain. Returns the
-- links, for archive to sign.
DROP FUNCTION og.end_batch();
CREATE FUNCTION og.end_batch() RETURNS SETOF og.chain
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

-- Signatures ------------------------------------------------------------------------------

-- archive's Ed25519 signature of each link (see the top of this file for the message).
CREATE TABLE og.chain_signature (
  district_code text NOT NULL,
  seq           bigint NOT NULL,
  public_key    bytea NOT NULL CHECK (octet_length(public_key) = 32),
  signature     bytea NOT NULL CHECK (octet_length(signature) = 64),
  signed_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (district_code, seq)
);
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON og.chain_signature
  FOR EACH ROW EXECUTE FUNCTION og.refuse_change();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON og.chain_signature
  FOR EACH STATEMENT EXECUTE FUNCTION og.refuse_change();

-- Stores the signature of a link this batch appended (anything else: SQLSTATE OG004).
-- The database cannot check an Ed25519 signature; verify does.
CREATE FUNCTION og.sign_link(p_chain text, p_seq bigint, p_public_key bytea, p_signature bytea)
  RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp AS $$
BEGIN
  PERFORM 1 FROM og.chain c
    WHERE c.district_code = p_chain AND c.seq = p_seq AND c.batch_id = currval('og.batch_id_seq');
  IF NOT FOUND THEN
    RAISE EXCEPTION 'link % of chain "%" is not a link of this batch', p_seq, p_chain
      USING ERRCODE = 'OG004';
  END IF;
  INSERT INTO og.chain_signature (district_code, seq, public_key, signature)
    VALUES (p_chain, p_seq, p_public_key, p_signature);
END $$;
REVOKE ALL ON FUNCTION og.sign_link(text, bigint, bytea, bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION og.sign_link(text, bigint, bytea, bytea) TO onegrid_writer;

-- Audit views ------------------------------------------------------------------------------
-- What verify reads, as the auditor: no personal data (not the rejections' raw copies).

CREATE OR REPLACE VIEW audit.chain AS
  SELECT district_code, seq, batch_id, prev_hash, hash, rows, first_ledger_id, last_ledger_id,
         created_at, format, records
    FROM og.chain;
CREATE VIEW audit.chain_signatures AS
  SELECT district_code, seq, public_key, signature, signed_at FROM og.chain_signature;
CREATE VIEW audit.event_keys AS
  SELECT source_system, source_event_id, district_code, case_id, ledger_id, stored_at
    FROM og.event_key;
CREATE VIEW audit.batches AS
  SELECT batch_id, shard, epoch, archive, committed_at FROM og.batch;
CREATE OR REPLACE VIEW audit.rejected_events AS
  SELECT rejection_id, received_at, recorded_at, publisher, source_system, source_event_id,
         reason, detail, raw_size, encode(raw_sha256, 'hex') AS raw_sha256, batch_id
    FROM og.rejection;

COMMENT ON VIEW audit.chain_signatures IS
  'archive''s Ed25519 signature of each link (onegridctl audit verify --public-key checks them)';
GRANT SELECT ON audit.chain_signatures, audit.event_keys, audit.batches TO onegrid_auditor;
