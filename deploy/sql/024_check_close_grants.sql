-- 024: 核查 (check) and 结案/作废 (close, void) are case actions a source must be granted
-- (DESIGN: "which case actions (evaluations, meeting decisions, splits, checks, closes) it
-- may send"), and a unit never checks or closes its own case (daemons/dispatch/decide.c).
-- Until now the unit that resolved a case could pass its own check and close it. No grant
-- is added here: after this migration, a source's CHECKED_OK, CHECK_FAILED, CLOSED and
-- VOIDED are refused (REASON_UNAUTHORISED_SOURCE, "may not send check") until the operator
-- grants the supervision or command centre's system the actions (docs/operating.md,
-- "Upgrading"). Nothing recorded changes.
SET LOCAL ROLE onegrid_owner;

ALTER TABLE og.source_action_grant DROP CONSTRAINT source_action_grant_action_check;
ALTER TABLE og.source_action_grant ADD CONSTRAINT source_action_grant_action_check
  CHECK (action IN ('evaluation', 'meeting_decision', 'split', 'mediation', 'extension_decision',
                    'check', 'close'));
