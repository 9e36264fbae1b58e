-- 029: the pause of the extension request that lapsed last (Decision.lapsed_paused_at,
-- Decision.lapsed_paused_deadline): when it paused the clock, and the deadline it paused.
-- A supervisor's approval or refusal, or the unit's own next step, that intake received
-- while the request was pending, but that dispatch decides only after its scan recorded
-- the lapse (intake cut off from dispatch meanwhile, or a second intake), left the clock
-- as the lapse had resumed it: the unit was given the time between the step's receipt and
-- the lapse. dispatch now resumes it as of the receipt, from these, after a restart too;
-- it keeps them until the clock next changes otherwise. Existing cases keep NULL (their
-- decisions did not carry them) and keep the clock the lapse left, as before.
SET LOCAL ROLE onegrid_owner;

ALTER TABLE og.case ADD COLUMN lapsed_paused_at timestamptz,
                    ADD COLUMN lapsed_paused_deadline_at timestamptz;
