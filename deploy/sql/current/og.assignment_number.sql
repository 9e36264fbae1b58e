-- og.assignment_number(): gives the current transaction's feed rows their numbers at
-- commit, in commit order, and moves them from og.assignment_pending to og.assignment
-- (constraint trigger number_at_commit on og.assignment_pending, DEFERRABLE INITIALLY
-- DEFERRED, fired once per transaction by its first pending row).
--
-- A subscriber reads "my unit's rows with seq > the last seq I processed". That is only
-- safe if rows become visible in seq order: once a reader can see seq N, every row below N
-- is visible too. A number taken when the row is inserted (an identity sequence, as before
-- migration 013) is not: archive A took 41, archive B took 42 and committed first, a
-- reader saw 42 and went on from there, and 41 appeared afterwards behind it, never to be
-- read (tests/integration/feed_order.sh).
--
-- So a row's number is given at the very end of its transaction, under a lock held until
-- the transaction is visible: this trigger fires at COMMIT, after everything else the
-- transaction does (after og.end_batch, for archive). It takes the transaction's pending
-- rows, then locks og.assignment_counter's row by updating it (last_seq + the number of
-- rows), and inserts the rows into og.assignment with the numbers that follow the old
-- last_seq. The row lock is held until the commit is complete. PostgreSQL makes a
-- committed transaction visible before it releases its locks, so the next transaction can
-- only take its numbers once every lower number is visible: a reader that has seen N has
-- seen every row below N there will ever be. A transaction that rolls back after taking
-- numbers undoes its counter update: the next one takes the same numbers, which no reader
-- has seen.
--
-- Not a sequence plus "rows below the oldest running transaction": transaction ids are
-- taken in another order than sequence numbers and commits in a third, so no snapshot
-- bound on ids tells which seq a reader may trust.
--
-- Cost: transactions that add feed rows commit one after the other from the numbering on:
-- the lock is held for one INSERT of the transaction's feed rows plus the commit itself
-- (the WAL flush). pg_notify already serialised exactly that stretch of those transactions
-- (PostgreSQL takes a database-wide lock in PreCommit_Notify until the commit is done), so
-- what is added is the INSERT. Moving the rows out of og.assignment_pending happens before
-- the lock is taken. SET CONSTRAINTS ALL IMMEDIATE in a writer's transaction numbers its
-- pending rows at the end of each statement instead, and then holds the counter until it
-- commits: correct, but every other writer of feed rows waits meanwhile.
--
-- Listeners on channel "onegrid_assignment" get one notification per transaction, sent
-- with the numbers: its payload is the highest seq the transaction added.

CREATE OR REPLACE FUNCTION og.assignment_number() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp AS $$
DECLARE
  held og.assignment_pending[];
  base bigint;
BEGIN
  -- Owner's rights: og.assignment_pending's own trigger only (og.feed_case_change).
  IF TG_RELID <> 'og.assignment_pending'::regclass THEN
    RAISE EXCEPTION 'og.assignment_number() numbers og.assignment_pending only, not %',
      TG_RELID::regclass;
  END IF;
  held := og.pending_taken();
  IF held IS NULL THEN
    RETURN NULL;
  END IF;
  -- From here to the end of the commit: the counter's row lock.
  UPDATE og.assignment_counter SET last_seq = last_seq + cardinality(held)
    RETURNING last_seq - cardinality(held) INTO base;
  INSERT INTO og.assignment (seq, unit_code, case_id, kind, state, deadline_at, ledger_id, recorded_at)
    SELECT base + h.i, h.unit_code, h.case_id, h.kind, h.state, h.deadline_at, h.ledger_id, h.recorded_at
      FROM unnest(held) WITH ORDINALITY AS h(xact, n, first_of_xact, unit_code, case_id, kind, state,
                                              deadline_at, ledger_id, recorded_at, i);
  PERFORM pg_notify('onegrid_assignment', (base + cardinality(held))::text);
  RETURN NULL;
END $$;

REVOKE ALL ON FUNCTION og.assignment_number() FROM PUBLIC;
