-- og.stored_outcome(source, event_id, received, publisher, tag): the answer for an event
-- that is stored already, as seen by a submission of it: ('stored', case_id) when that
-- submission is the one that was stored, however often it was resent — by a hop (intake
-- after dispatch restarted, dispatch after archive did: the same receipt time) or by its
-- publisher (libonegrid after intake restarted, or after its own restart from its outbox:
-- the same Submit.tag); ('duplicate', case_id) when a different submission of the event
-- was stored (another publisher, or another tag and receipt). No row when the event is not
-- stored. The stored submission's publisher, receipt time and tag are in the event's
-- ledger row (detail ->> 'publisher', 'received', 'tag', written by archive: the time as
-- og_time_format gives it, the tag in lowercase hex; no tag before it was recorded).
-- og.store_event answers a conflicting event key with it; dispatch asks it for events a
-- resend brings that are stored already.

-- The arguments changed (p_tag added): the old function is another one to PostgreSQL.
DROP FUNCTION IF EXISTS og.stored_outcome(text, text, text, text);

CREATE OR REPLACE FUNCTION og.stored_outcome(p_source text, p_event_id text, p_received text,
                                             p_publisher text, p_tag text,
                                             OUT outcome text, OUT case_id text)
RETURNS SETOF record
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp AS $$
  SELECT CASE WHEN l.detail ->> 'publisher' = p_publisher
                   AND (l.detail ->> 'received' = p_received
                        OR (coalesce(p_tag, '') <> '' AND l.detail ->> 'tag' = p_tag))
              THEN 'stored' ELSE 'duplicate' END,
         k.case_id
    FROM og.event_key k
    JOIN og.ledger l ON l.ledger_id = k.ledger_id AND l.recorded_at = k.stored_at
   WHERE k.source_system = p_source AND k.source_event_id = p_event_id
$$;

REVOKE ALL ON FUNCTION og.stored_outcome(text, text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION og.stored_outcome(text, text, text, text, text)
  TO onegrid_writer, onegrid_reader;
