-- audit.event_keys: the idempotency record (og.event_key), which district chains cover, for
-- audit verify.

CREATE OR REPLACE VIEW audit.event_keys AS
  SELECT source_system, source_event_id, district_code, case_id, ledger_id, stored_at
    FROM og.event_key;

GRANT SELECT ON audit.event_keys TO onegrid_auditor;
