-- 022: the assignment feed's rows are computed once per statement, not once per row. The
-- row trigger feed cost a PL/pgSQL call, an INSERT and its executor start-up per case, a
-- third of the database's time per event (issue 11); archive now opens the cases of a
-- whole batch with one INSERT (og.store_opened), and a statement trigger reads them all
-- from its transition table. A trigger with transition tables fires on one event only, so
-- there are two: feed_opened and feed_changed, the same function
-- (current/og.feed_case_change.sql). What the feed says is unchanged (feed.sh,
-- feed_order.sh).
SET LOCAL ROLE onegrid_owner;

DROP TRIGGER feed ON og.case;
--@current og.feed_case_change
CREATE TRIGGER feed_opened AFTER INSERT ON og.case
  REFERENCING NEW TABLE AS new_case
  FOR EACH STATEMENT EXECUTE FUNCTION og.feed_case_change();
CREATE TRIGGER feed_changed AFTER UPDATE ON og.case
  REFERENCING OLD TABLE AS old_case NEW TABLE AS new_case
  FOR EACH STATEMENT EXECUTE FUNCTION og.feed_case_change();
