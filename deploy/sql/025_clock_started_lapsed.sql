-- 025: when a case's current clock started (Decision.clock_started, set by dispatch), so
-- that the clock's colours (audit.case_clocks: green under 80 % of the time limit, yellow
-- up to the deadline) measure the time limit from the clock's start. They measured it from
-- the filing: a case reopened 90 days after it was filed, with 7 days to rework it, was
-- yellow from the moment it reopened. Existing cases keep NULL (their decisions did not
-- carry it) and are measured from the filing, as before, until their next clock starts.
-- And when the case's last extension request lapsed undecided (Decision.extension_lapsed;
-- [dispatch] extension_decision_days): a decision on the request that intake received
-- before then is judged as made while it was pending, after a restart too.
SET LOCAL ROLE onegrid_owner;

ALTER TABLE og.case ADD COLUMN clock_started_at timestamptz,
                    ADD COLUMN extension_lapsed_at timestamptz;

-- The supervising units that were told of a request (extension_requested) are told when it
-- lapses (og.feed_case_change).
ALTER TABLE og.assignment DROP CONSTRAINT assignment_kind_check;
ALTER TABLE og.assignment ADD CONSTRAINT assignment_kind_check CHECK (kind IN (
  'assigned', 'withdrawn', 'supervise', 'finished', 'reopened', 'deadline_changed',
  'supervision_ended', 'extension_requested', 'extension_lapsed'));
