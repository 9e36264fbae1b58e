-- og.ledger_canonical(l): the canonical text of a ledger row in chain links of format 1,
-- the links og.end_batch made before migration 015 (og.chain.format = 1). A format-1
-- link's hash is
--   SHA-256(previous link's hash (32 zero bytes for a district's first link)
--           || SHA-256 of this text, UTF-8, of each of the batch's rows of the district,
--              in ledger_id order)
-- and the text joins, with U+001F: ledger_id, recorded_at in microseconds since the epoch,
-- batch_id, district_code, kind, case_id ('' if none), source_system, source_event_id,
-- event_type, detail as jsonb text, body in lowercase hex.
-- Nothing makes format-1 links any more (og.chain_link makes format 2); this stays as the
-- database's own account of how the old links were made. `onegridctl audit verify` does
-- not call it: it builds the same text itself.

CREATE OR REPLACE FUNCTION og.ledger_canonical(l og.ledger) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT concat_ws(E'\x1f', l.ledger_id, (extract(epoch FROM l.recorded_at) * 1000000)::bigint,
                   l.batch_id, l.district_code, l.kind, coalesce(l.case_id, ''), l.source_system,
                   l.source_event_id, l.event_type, l.detail::text, encode(l.body, 'hex'))
$$;
