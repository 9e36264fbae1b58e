-- 013: assignment feed numbers in commit order, so a reader never skips a row.
--
-- A subscriber reads "my unit's rows with seq > the last seq I processed". That is only
-- safe if rows become visible in seq order: once a reader can see seq N, every row below N
-- is visible too. Until now seq came from an identity sequence when the row was inserted,
-- long before its transaction committed: archive A took 41, archive B took 42 and
-- committed first, a reader saw 42 and went on from there, and 41 appeared afterwards
-- behind it, never to be read (tests/integration/feed_order.sh).
--
-- Now a row's number is given at the very end of its transaction, under a lock held until
-- the transaction is visible:
--   * og.feed_case_change puts the rows a change calls for in og.assignment_pending
--     (same columns, no seq), marking the first of its transaction;
--   * that first row queues a deferred constraint trigger, which fires at COMMIT, after
--     everything else the transaction does (after og.end_batch, for archive). It takes
--     the transaction's pending rows, then locks og.assignment_counter's row by updating
--     it: last_seq + the number of rows, and inserts the rows into og.assignment with the
--     numbers that follow the old last_seq.
--   * The row lock is held until the commit is complete. PostgreSQL makes a committed
--     transaction visible before it releases its locks, so the next transaction can only
--     take its numbers once every lower number is visible. Numbers therefore become
--     visible in order: a reader that has seen N has seen every row below N there will
--     ever be.
-- A transaction that rolls back after taking numbers undoes its counter update: the next
-- one takes the same numbers, which no reader has seen.
--
-- Not a sequence plus "rows below the oldest running transaction": transaction ids are
-- taken in another order than sequence numbers and commits in a third, so no snapshot
-- bound on ids tells which seq a reader may trust.
--
-- Cost: transactions that add feed rows commit one after the other from the numbering on:
-- the lock is held for one INSERT of the transaction's feed rows plus the commit itself
-- (the WAL flush). pg_notify already serialised exactly that stretch of those transactions
-- (PostgreSQL takes a database-wide lock in PreCommit_Notify until the commit is done),
-- so what is added is the INSERT. Moving the rows out of og.assignment_pending happens
-- before the lock is taken.
--
-- SET CONSTRAINTS ALL IMMEDIATE in a writer's transaction numbers its pending rows at the
-- end of each statement instead, and then holds the counter until it commits: correct, but
-- it makes every other writer of feed rows wait meanwhile.
--
-- Listeners on "onegrid_assignment" now get one notification per transaction, sent with
-- the numbers: its payload is the highest seq the transaction added.

SET LOCAL ROLE onegrid_owner;

-- seq is given by og.assignment_number only: an INSERT without it fails (NOT NULL).
ALTER TABLE og.assignment ALTER COLUMN seq DROP IDENTITY;
COMMENT ON COLUMN og.assignment.seq IS
  'given at commit, in commit order (og.assignment_number); readers read seq > the last one seen';

-- The last seq given. One row: its row lock orders the numbering.
CREATE TABLE og.assignment_counter (
  one      boolean PRIMARY KEY DEFAULT true CHECK (one),
  last_seq bigint NOT NULL
);
INSERT INTO og.assignment_counter (last_seq) SELECT coalesce(max(seq), 0) FROM og.assignment;

-- Feed rows of transactions not yet committed. Every row leaves within its own
-- transaction, so nothing here outlives a crash that matters: UNLOGGED spares the WAL.
CREATE UNLOGGED TABLE og.assignment_pending (
  xact          xid8 NOT NULL DEFAULT pg_current_xact_id(),
  n             bigint GENERATED ALWAYS AS IDENTITY,  -- order within the transaction
  first_of_xact boolean NOT NULL,
  unit_code     text NOT NULL,
  case_id       text NOT NULL,
  kind          text NOT NULL,
  state         text NOT NULL,
  deadline_at   timestamptz,
  ledger_id     bigint NOT NULL,
  recorded_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON og.assignment_pending (xact);

-- Numbers the current transaction's pending rows and moves them to og.assignment.
CREATE FUNCTION og.assignment_number() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og AS $$
DECLARE
  held og.assignment_pending[];
  base bigint;
BEGIN
  WITH d AS (DELETE FROM og.assignment_pending p WHERE p.xact = pg_current_xact_id() RETURNING p.*)
  SELECT array_agg(d ORDER BY d.n) INTO held FROM d;
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
-- WHEN is evaluated as the row is inserted (not deferred): one queued firing per
-- transaction, or one per statement that adds rows after an immediate numbering.
CREATE CONSTRAINT TRIGGER number_at_commit AFTER INSERT ON og.assignment_pending
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW WHEN (NEW.first_of_xact) EXECUTE FUNCTION og.assignment_number();

-- 011's function, but the rows go to og.assignment_pending, in one INSERT, to be numbered
-- and announced at commit. Which rows a change calls for is unchanged.
CREATE OR REPLACE FUNCTION og.feed_case_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og AS $$
DECLARE
  final constant text[] := ARRAY['closed', 'evaluated', 'voided'];
  -- Not open: no clock runs that the unit must meet (nor merges, nor escalation).
  not_open constant text[] := ARRAY['resolved', 'checked', 'closed', 'evaluated', 'voided'];
  is_final boolean := NEW.state = ANY (final);
  was_final boolean := false;
  units text[] := '{}';
  kinds text[] := '{}';
BEGIN
  IF TG_OP = 'INSERT' THEN
    -- Opened: also when opened closed in its unit's name (社区自办); state says so.
    IF NEW.unit_code IS NOT NULL THEN
      units := units || NEW.unit_code;
      kinds := kinds || 'assigned'::text;
    END IF;
    IF NEW.supervisor_unit IS NOT NULL THEN
      units := units || NEW.supervisor_unit;
      kinds := kinds || 'supervise'::text;
    END IF;
  ELSE
    was_final := OLD.state = ANY (final);
    IF NEW.unit_code IS DISTINCT FROM OLD.unit_code THEN
      IF NEW.unit_code IS NOT NULL THEN
        units := units || NEW.unit_code;
        kinds := kinds || 'assigned'::text;
      END IF;
      IF OLD.unit_code IS NOT NULL THEN
        units := units || OLD.unit_code;
        kinds := kinds || 'withdrawn'::text;
      END IF;
    ELSIF NEW.unit_code IS NOT NULL THEN
      -- The same unit keeps the case. Closed or voided, by whoever: it can stop work.
      IF is_final AND NOT was_final THEN
        units := units || NEW.unit_code;
        kinds := kinds || 'finished'::text;
      ELSIF was_final AND NOT is_final THEN
        units := units || NEW.unit_code;
        kinds := kinds || 'reopened'::text;
      ELSIF NEW.state <> ALL (not_open) AND NEW.deadline_at IS DISTINCT FROM OLD.deadline_at THEN
        -- deadline_at NULL: the clock stopped (shelved).
        units := units || NEW.unit_code;
        kinds := kinds || 'deadline_changed'::text;
      END IF;
    END IF;
    -- A supervision ends when the case leaves it or is finished; a case reopened after
    -- that starts without a supervisor, so the end is told once.
    IF OLD.supervisor_unit IS NOT NULL AND NOT was_final AND
       (NEW.supervisor_unit IS DISTINCT FROM OLD.supervisor_unit OR is_final) THEN
      units := units || OLD.supervisor_unit;
      kinds := kinds || 'supervision_ended'::text;
    END IF;
    IF NEW.supervisor_unit IS NOT NULL AND
       NEW.supervisor_unit IS DISTINCT FROM OLD.supervisor_unit THEN
      units := units || NEW.supervisor_unit;
      kinds := kinds || 'supervise'::text;
    END IF;
  END IF;
  -- An extension request (申请延期) waits for a supervising unit of the case's community,
  -- street or district: each hears of it (never the unit that asked).
  IF TG_OP = 'UPDATE' AND NEW.paused_at IS NOT NULL AND OLD.paused_at IS NULL THEN
    units := units || ARRAY(SELECT DISTINCT v.unit_code FROM og.supervisor v
                             WHERE v.area_code IN (left(NEW.area_code, 12), left(NEW.area_code, 9),
                                                   left(NEW.area_code, 6))
                               AND v.unit_code IS DISTINCT FROM NEW.unit_code
                             ORDER BY v.unit_code);
    WHILE coalesce(array_length(kinds, 1), 0) < coalesce(array_length(units, 1), 0) LOOP
      kinds := kinds || 'extension_requested'::text;
    END LOOP;
  END IF;
  IF cardinality(units) > 0 THEN
    -- The statement does not see its own rows: the NOT EXISTS is about earlier ones.
    INSERT INTO og.assignment_pending (first_of_xact, unit_code, case_id, kind, state, deadline_at,
                                       ledger_id)
      SELECT u.i = 1 AND NOT EXISTS (SELECT 1 FROM og.assignment_pending p
                                      WHERE p.xact = pg_current_xact_id()),
             u.unit_code, NEW.case_id, u.kind, NEW.state, NEW.deadline_at, NEW.last_ledger_id
        FROM unnest(units, kinds) WITH ORDINALITY AS u(unit_code, kind, i)
       ORDER BY u.i;
  END IF;
  RETURN NULL;
END $$;
