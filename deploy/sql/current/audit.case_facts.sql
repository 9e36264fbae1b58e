-- audit.case_facts: what the KPIs (audit.kpi) and audit.overdue_cases are computed from,
-- one row per case, read from og.case, whose facts the write path keeps in the same
-- transaction as the ledger rows they come from (migration 020; og.case_facts_rebuilt
-- derives them from the ledger, and audit.projection_differences compares the two): when
-- it was first resolved and first closed and the deadline then, whether it was ever
-- returned (退回: state 'returned', or a decision naming the unit that returned it), how
-- often it was reworked (resolved, then in progress again; closed, then dispatched
-- again), its last evaluation, whether it is open, the month it was filed in (its first
-- day, Asia/Shanghai), whether its clock is paused (paused_at: an extension request
-- pending) and whether it is overdue (its clock running, past its deadline: what
-- dispatch escalates). Open and overdue are read from dispatch's conclusions, og.case's
-- stage and clock (migration 023): open is stage 'handling' (not resolved, checked or
-- final), a running clock is one of an open case with a deadline that is not paused.
-- Dropped and made again when applied (reworks was bigint): the views reading it go with
-- it and migrate makes them again in the same run.

DROP VIEW IF EXISTS audit.case_facts CASCADE;

CREATE OR REPLACE VIEW audit.case_facts AS
  SELECT c.case_id, c.district_code, left(c.area_code, 9) AS street_code,
         left(c.area_code, 12) AS community_code, c.unit_code, c.category_code, c.state,
         c.opened_at, c.deadline_at, c.contacts,
         c.first_resolved_at, c.deadline_when_resolved, c.first_closed_at,
         c.deadline_when_closed, c.returned, c.reworks, c.last_evaluation,
         c.stage = 'handling' AS open,
         -- The expression of og.case's index case_month_district (021): keep them alike.
         date_trunc('month', c.opened_at AT TIME ZONE 'Asia/Shanghai')::date AS month,
         c.paused_at,
         -- The predicate of og.case's index case_overdue, and deadline_at < now().
         c.clock = 'running' AND c.deadline_at < now() AS overdue,
         c.stage, c.clock
    FROM og.case c;

GRANT SELECT ON audit.case_facts TO onegrid_auditor;
