-- audit.chain: every link of every hash chain (og.chain_link says what a link covers; format
-- 1 links: og.ledger_canonical), for audit verify.

CREATE OR REPLACE VIEW audit.chain AS
  SELECT district_code, seq, batch_id, prev_hash, hash, rows, first_ledger_id, last_ledger_id,
         created_at, format, records
    FROM og.chain;

GRANT SELECT ON audit.chain TO onegrid_auditor;
