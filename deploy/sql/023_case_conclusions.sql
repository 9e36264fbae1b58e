-- 023: dispatch's conclusions on each case are columns of og.case (issue 11 item 2), set
-- from each decision (Decision.stage, Decision.clock: daemons/dispatch/lifecycle.c):
--   stage   what the case waits for: 'handling' (its unit's work), 'checking' (resolved or
--           checked: a check, then closing), 'final' (closed, evaluated, voided)
--   clock   'running' (handling, a deadline, not paused: the case can be overdue, and
--           dispatch escalates it), 'paused' (an extension request pending), 'none'
-- audit.case_facts (open, overdue), audit.case_clocks, audit.overdue_cases, audit.kpi and
-- the assignment feed read them, instead of each deriving them again from the state.
-- Existing cases get them by the rule dispatch followed until now (og.case_stage,
-- og.case_clock); the backfill changes no unit, state, deadline or supervisor, so the
-- feed has nothing to say. The ledger itself is not changed.
SET LOCAL ROLE onegrid_owner;

--@current og.case_stage
--@current og.case_clock
ALTER TABLE og.case ADD COLUMN stage text, ADD COLUMN clock text;

ALTER TABLE og.case DISABLE TRIGGER feed_changed;
UPDATE og.case SET stage = og.case_stage(state), clock = og.case_clock(og.case_stage(state), deadline_at, paused_at);
ALTER TABLE og.case ENABLE TRIGGER feed_changed;

ALTER TABLE og.case
  ALTER COLUMN stage SET NOT NULL,
  ALTER COLUMN clock SET NOT NULL,
  ADD CONSTRAINT case_stage_known CHECK (stage IN ('handling', 'checking', 'final')),
  ADD CONSTRAINT case_clock_known CHECK (clock IN ('running', 'paused', 'none'));

-- audit.overdue_cases and the KPI's 超期未处置: the running clocks, by deadline.
DROP INDEX og.case_overdue;
CREATE INDEX case_overdue ON og.case (deadline_at) WHERE clock = 'running';

-- The functions that write og.case, in this transaction: with the columns NOT NULL and
-- the old functions until migrate's later transaction of current definitions, a batch an
-- archive stored in between would have been refused for a NULL stage (SQLSTATE 23502,
-- the record's fault), or would have left a moved case's conclusions as they were.
--@current og.apply_case
--@current og.store_event
--@current og.store_opened
