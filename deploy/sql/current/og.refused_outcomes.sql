-- og.refused_outcomes(sources, event_ids, receipts, publishers): for each submission given
-- (the arrays side by side), the refusal recorded for that very submission (og.rejection:
-- the same source, event id, publisher and receipt time), as its answer: one row (n, its
-- place in the arrays from 1, source_system, source_event_id, reason, detail) per
-- submission that has one; none for a receipt time that is unknown (''). dispatch asks it, with og.stored_outcome, for the
-- events of each inbox: a hop's resend (intake after dispatch restarted: the same receipt
-- time) of a submission that was refused and recorded is answered with that refusal, not
-- decided again. Deciding it again could answer it otherwise than the record says (a state
-- that changed since), and a refusal by the database for the record's own content would
-- come again, the dispatch that decided it restarting to reload each time. A new
-- submission of the same event (its publisher sends it again, after the cause was fixed)
-- has a receipt time of its own: decided anew.
-- One call per inbox (not per event: a SECURITY DEFINER function is not inlined, and its
-- call costs more than the lookup), in PL/pgSQL so that its plan is kept for the session
-- (an SQL function's body is planned again at every call: a millisecond, for one event);
-- og.rejection is searched by its received_at index. The receipt time is the text
-- og_time_format gives, as og.stored_outcome compares it.

-- Its result changed (n added) while it was new: the old one is another to PostgreSQL.
DROP FUNCTION IF EXISTS og.refused_outcomes(text[], text[], text[], text[]);

-- ROWS: few submissions of an inbox are refused ones; the estimate keeps dispatch's
-- check that they are not stored an index lookup per row (not a scan of og.event_key).
CREATE OR REPLACE FUNCTION og.refused_outcomes(p_source text[], p_event_id text[],
                                               p_received text[], p_publisher text[],
                                               OUT n bigint, OUT source_system text,
                                               OUT source_event_id text, OUT reason text,
                                               OUT detail text)
RETURNS SETOF record
LANGUAGE plpgsql STABLE SECURITY DEFINER ROWS 5 SET search_path = pg_catalog, og, pg_temp AS $$
BEGIN
  RETURN QUERY
  SELECT u.n, u.s, u.i, r.reason, r.detail
    FROM unnest(p_source, p_event_id, p_received, p_publisher) WITH ORDINALITY AS u(s, i, rc, p, n)
    CROSS JOIN LATERAL (
      SELECT r.reason, r.detail
        FROM og.rejection r
       WHERE r.received_at = nullif(u.rc, '')::timestamptz
         AND r.source_system = u.s AND r.source_event_id = u.i AND r.publisher = u.p
       ORDER BY r.rejection_id
       LIMIT 1) r;
END $$;

REVOKE ALL ON FUNCTION og.refused_outcomes(text[], text[], text[], text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION og.refused_outcomes(text[], text[], text[], text[]) TO onegrid_reader;
