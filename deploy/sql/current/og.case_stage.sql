-- og.case_stage(state): what a case in that state waits for, as dispatch concluded it
-- before it wrote its conclusion into each decision (migration 023): 'final' (closed,
-- evaluated, voided), 'checking' (resolved, checked), else 'handling'.
--
-- Only for the records that do not carry dispatch's own conclusion (Decision.stage): the
-- cases and ledger decisions recorded before 023 (the backfill) and a decision of a
-- dispatch older than 023 (og.decision_case, which storage and og.case_rebuilt read).
-- The rule is dispatch's (daemons/dispatch/lifecycle.c, og_lifecycle_stage): the views
-- read og.case.stage, never this. This copy says what those older records meant, so it
-- does not change when dispatch's rule does.

CREATE OR REPLACE FUNCTION og.case_stage(p_state text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN p_state IN ('closed', 'evaluated', 'voided') THEN 'final'
              WHEN p_state IN ('resolved', 'checked') THEN 'checking'
              ELSE 'handling' END
$$;
