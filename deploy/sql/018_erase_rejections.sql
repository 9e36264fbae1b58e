-- 018: erasure reaches refused events too. A refusal keeps a copy of the bytes received
-- (og.rejection.raw: up to max_rejected_bytes of the frame, or the event as dispatch
-- refused it), and a refused report may carry its reporter's name and phone. archive now
-- records dispatch's refusals without the contact, but intake's refusals of frames it
-- could not decode, and every refusal stored before, may hold one. og.erase_contact
-- therefore also empties the raw copy of every refusal of that event; the digest and size
-- of the bytes stay, and so does the chain: raw is the one column of og.rejection no link
-- covers (migration 015), for this reason.
-- og.rejection stays append-only but for that one change: raw emptied, nothing else.
CREATE FUNCTION og.rejection_erasure_only() RETURNS trigger
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
DROP TRIGGER append_only ON og.rejection;
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON og.rejection
  FOR EACH ROW EXECUTE FUNCTION og.rejection_erasure_only();

CREATE OR REPLACE FUNCTION og.erase_contact(p_source text, p_event_id text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp AS $$
DECLARE
  contact boolean;
  refusals integer;
BEGIN
  UPDATE og.reporter_contact SET name = NULL, phone = NULL, erased_at = now()
   WHERE source_system = p_source AND source_event_id = p_event_id AND erased_at IS NULL;
  contact := FOUND;
  UPDATE og.rejection SET raw = ''::bytea
   WHERE source_system = p_source AND source_event_id = p_event_id AND raw <> ''::bytea;
  GET DIAGNOSTICS refusals = ROW_COUNT;
  RETURN contact OR refusals > 0;
END $$;
REVOKE ALL ON FUNCTION og.erase_contact(text, text) FROM PUBLIC;
