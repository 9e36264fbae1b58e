-- audit.chain_heads (链头): the head of each chain, for anchoring elsewhere.

CREATE OR REPLACE VIEW audit.chain_heads AS
  SELECT district_code, seq, encode(hash, 'hex') AS hash FROM og.chain_head;

CREATE OR REPLACE VIEW audit."链头" AS SELECT * FROM audit.chain_heads;
COMMENT ON VIEW audit.chain_heads IS '链头: the head of each district''s hash chain, for anchoring';
GRANT SELECT ON audit.chain_heads, audit."链头" TO onegrid_auditor;
