-- og.stored_outcome(source, event_id, received, publisher): the answer for an event that
-- is stored already, as seen by the submission received at `received` from `publisher`:
-- ('stored', case_id) when that submission is the one that was stored, however often a
-- hop resent it (intake after dispatch restarted, dispatch after archive did);
-- ('duplicate', case_id) when a different submission of the event was. No row when the
-- event is not stored. A submission is known by when intake received it and from which
-- publisher, both kept in the event's ledger row (detail ->> 'received', ->> 'publisher',
-- written by archive as og_time_format gives them). og.store_event answers a conflicting
-- event key with it; dispatch asks it for events a resend brings that are stored already.

CREATE OR REPLACE FUNCTION og.stored_outcome(p_source text, p_event_id text, p_received text,
                                             p_publisher text, OUT outcome text, OUT case_id text)
RETURNS SETOF record
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp AS $$
  SELECT CASE WHEN l.detail ->> 'received' = p_received AND l.detail ->> 'publisher' = p_publisher
              THEN 'stored' ELSE 'duplicate' END,
         k.case_id
    FROM og.event_key k
    JOIN og.ledger l ON l.ledger_id = k.ledger_id AND l.recorded_at = k.stored_at
   WHERE k.source_system = p_source AND k.source_event_id = p_event_id
$$;

REVOKE ALL ON FUNCTION og.stored_outcome(text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION og.stored_outcome(text, text, text, text)
  TO onegrid_writer, onegrid_reader;
