-- og.rejection_erasure_only(): og.rejection's row trigger (append_only, BEFORE UPDATE OR
-- DELETE). A refusal stays as it was recorded but for one change: og.erase_contact may
-- empty its raw copy (raw = ''), which may hold a reporter's name and phone; its digest
-- and size stay, and so does the chain, since raw is the one column of og.rejection no
-- link covers (og.chain_link). Anything else: SQLSTATE OG003.

CREATE OR REPLACE FUNCTION og.rejection_erasure_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND NEW.raw = ''::bytea
     AND (NEW.rejection_id, NEW.batch_id, NEW.received_at, NEW.recorded_at, NEW.publisher,
          NEW.source_system, NEW.source_event_id, NEW.reason, NEW.detail, NEW.raw_size,
          NEW.raw_sha256)
         IS NOT DISTINCT FROM
         (OLD.rejection_id, OLD.batch_id, OLD.received_at, OLD.recorded_at, OLD.publisher,
          OLD.source_system, OLD.source_event_id, OLD.reason, OLD.detail, OLD.raw_size,
          OLD.raw_sha256) THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION '%.% is append-only (only its raw copy may be erased): % refused',
    TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP USING ERRCODE = 'OG003';
END $$;
