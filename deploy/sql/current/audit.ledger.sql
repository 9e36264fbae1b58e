-- audit.ledger: the ledger itself (no contact data is ever in it), for audit verify.
--
-- The audit views are owned by onegrid_owner, so they read the og tables on the auditor's
-- behalf; the auditor role reads these and nothing else. No view shows reporters'
-- contacts nor the bytes of refused events.

CREATE OR REPLACE VIEW audit.ledger AS
  SELECT ledger_id, recorded_at, batch_id, district_code, kind, case_id, source_system,
         source_event_id, event_type, detail, body
    FROM og.ledger;

GRANT SELECT ON audit.ledger TO onegrid_auditor;
