-- og.case_clock(stage, deadline_at, paused_at): a case's clock, as dispatch concluded it
-- before it wrote its conclusion into each decision (migration 023): 'running' (stage
-- 'handling', a deadline, not paused: it can be overdue), 'paused' (handling, an extension
-- request pending), else 'none'. stage is og.case_stage's (a parameter, not a call: the
-- planner inlines this function, looking up what its body names as the one who runs the
-- query).
--
-- Only for the records that do not carry dispatch's own conclusion (Decision.clock); see
-- og.case_stage. The rule is dispatch's (daemons/dispatch/lifecycle.c, og_lifecycle_clock).

CREATE OR REPLACE FUNCTION og.case_clock(p_stage text, p_deadline_at timestamptz,
                                         p_paused_at timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN p_deadline_at IS NULL OR p_stage <> 'handling' THEN 'none'
              WHEN p_paused_at IS NOT NULL THEN 'paused'
              ELSE 'running' END
$$;
