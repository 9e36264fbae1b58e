-- og.sign_link(chain, seq, public_key, signature): stores archive's Ed25519 signature of a
-- link this batch appended (anything else: SQLSTATE OG004) in og.chain_signature
-- (append-only, one per link, with the public key). archive holds the key, the database
-- never sees it ([archive] signing_key, `onegridctl keygen --signing`); it signs every link
-- og.end_batch returns, in the same transaction. The signed message is
-- 'onegrid.chain.head.v1', chain, seq, batch_id, format and the link hash in lowercase
-- hex, each as a netstring (daemons/common/chainsig.c). The database cannot check an
-- Ed25519 signature; `onegridctl audit verify --public-key FILE` checks every signature
-- and that no link after the first signed one is unsigned: whoever rewrites a row must
-- recompute the links after it, and cannot sign them.

CREATE OR REPLACE FUNCTION og.sign_link(p_chain text, p_seq bigint, p_public_key bytea,
                                         p_signature bytea)
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
