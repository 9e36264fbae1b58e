-- audit.chain_signatures: archive's Ed25519 signature of each link (og.sign_link), for
-- `onegridctl audit verify --public-key`.

CREATE OR REPLACE VIEW audit.chain_signatures AS
  SELECT district_code, seq, public_key, signature, signed_at FROM og.chain_signature;

COMMENT ON VIEW audit.chain_signatures IS
  'archive''s Ed25519 signature of each link (onegridctl audit verify --public-key checks them)';
GRANT SELECT ON audit.chain_signatures TO onegrid_auditor;
