-- og.erase_contact(source, event_id): erases a reporter's personal data (a data subject's
-- request; the owner's function): the name and phone kept for the event in
-- og.reporter_contact, and the raw copy of every refusal of that event (og.rejection.raw,
-- which may hold them; its digest and size stay: og.rejection_erasure_only). The case, the
-- ledger and the chains stay as they are: they never held the contact. Returns true when
-- anything was erased.

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
