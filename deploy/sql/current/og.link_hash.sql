-- og.link_hash(prev, chain, seq, batch, digests): the hash of link `seq` of chain `chain`,
-- for batch `batch`, after a link whose hash is `prev`, covering records whose digests,
-- in the link's order, are `digests` (format 2: og.chain_link says what a link covers and
-- how each record's digest is made):
--   SHA-256(prev || 'link', chain, seq, batch as netstrings || digests)
-- og.chain_link and og.end_batch make every link's hash with it. Inlined into its callers.

CREATE OR REPLACE FUNCTION og.link_hash(p_prev bytea, p_chain text, p_seq bigint, p_batch bigint,
                                        p_digests bytea)
  RETURNS bytea
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT sha256(p_prev || convert_to(og.ns('link') || og.ns(p_chain) || og.ns(p_seq::text)
                                     || og.ns(p_batch::text), 'UTF8')
                || p_digests)
$$;

REVOKE ALL ON FUNCTION og.link_hash(bytea, text, bigint, bigint, bytea) FROM PUBLIC;
