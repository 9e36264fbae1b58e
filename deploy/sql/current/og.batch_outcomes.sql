-- og.batch_outcomes(p_source[], p_event_id[], p_event_detail[], p_decision_detail[],
-- fresh[]): what og.store_opened and og.store_moved answer for the events of their arrays,
-- one row per event: its position (from 1), and ('stored', the case its decision names)
-- when its position is in fresh (the events the call stored now), else what
-- og.stored_outcome answers for its key (a resend by a hop: 'stored'; another submission
-- of the event: 'duplicate'; with the case stored the first time). The arrays are the
-- callers' arguments of those names. (Its parameters' names changed: the file drops it
-- first.)
--
-- A join on the positions: a search of fresh for each event (= ANY) took time in the
-- square of the batch's size.
--
-- SQL, set-returning, STABLE, not SECURITY DEFINER and with no SET: the planner inlines it
-- into its callers' RETURN QUERY, whose plan PL/pgSQL keeps for the session. As a SECURITY
-- DEFINER function it could not be inlined, and PostgreSQL 15 parsed and planned its query
-- again at every call: 11.7 % of the time archive's database session spent on batches of
-- one or two events. Its callers run as its owner already, with search_path pg_catalog,
-- og, pg_temp; og.stored_outcome (SECURITY DEFINER) reads the tables.
-- tests/integration/history_scans.sh checks that it stays inlined.

DROP FUNCTION IF EXISTS og.batch_outcomes(text[], text[], jsonb[], jsonb[], bigint[]);

CREATE OR REPLACE FUNCTION og.batch_outcomes(p_source text[], p_event_id text[],
                                             p_event_detail jsonb[], p_decision_detail jsonb[],
                                             fresh bigint[])
  RETURNS TABLE (i integer, outcome text, case_id text)
LANGUAGE sql STABLE AS $$
  SELECT a.n::integer, o.outcome, o.case_id
    FROM unnest(p_source, p_event_id, p_event_detail, p_decision_detail)
           WITH ORDINALITY AS a(source, event_id, event, d, n)
    LEFT JOIN unnest(fresh) AS f(n) ON f.n = a.n
    LEFT JOIN LATERAL (SELECT 'stored'::text, a.d ->> 'case_id' WHERE f.n IS NOT NULL
                       UNION ALL
                       SELECT x.outcome, x.case_id
                         FROM og.stored_outcome(a.source, a.event_id, a.event ->> 'received',
                                                a.event ->> 'publisher', a.event ->> 'tag') x
                        WHERE f.n IS NULL) o(outcome, case_id) ON true
$$;

REVOKE ALL ON FUNCTION og.batch_outcomes(text[], text[], jsonb[], jsonb[], bigint[]) FROM PUBLIC;
