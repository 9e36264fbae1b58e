-- og.feed_case_change(): the assignment feed's rows for the cases a statement opened or
-- changed (triggers feed_opened, AFTER INSERT, and feed_changed, AFTER UPDATE, on og.case,
-- for each statement, with the statement's rows as transition tables new_case and
-- old_case: migration 022). At most one row for each part a unit plays in a case (holding
-- it now, having held it, supervising it now, having supervised it), so no decision gives
-- a unit two rows of one kind:
--   assigned / withdrawn    the case went to a unit / left it (opened, re-routed after a
--                           return, reassigned); also when opened closed in the unit's
--                           name (社区自办): state says so
--   finished / reopened     the unit keeps the case and it was closed or voided / reopened
--                           (by an evaluation, or sent back from its check: 返工)
--                           (不满意)
--   deadline_changed        the unit keeps the open case and its deadline moved (延期, a
--                           paused clock resumed, shelved: deadline NULL, a joint meeting
--                           started it again), or its paused clock runs again (a refusal
--                           or a lapse: its deadline may be the same, the pause having
--                           used no working time)
--   supervise / supervision_ended
--                           a supervisor (督办) was given the case / lost it (the case went
--                           to another supervisor, left supervision, or was finished)
--   extension_lapsed        an extension request lapsed undecided
--                           (extension_decision_days): the units it waited for (those told
--                           of it) hear that it is no longer theirs to decide
--   extension_ended         an extension request stopped waiting otherwise: approved or
--                           refused by one of those units, ended by the holding unit's own
--                           next step (a return too), or the case voided: the same units
--                           hear that it is no longer theirs to decide (migration 026)
--   extension_requested     an extension request (申请延期) waits for a supervising unit of
--                           the case's community, street or district: each hears of it
--                           (never the unit that asked); after the lapse of the one before
--                           it when one decision has both
-- A status update that only moves the case along its own lifecycle (accepted, in
-- progress, resolved, checked) adds no row. Finished and open are dispatch's conclusions,
-- og.case.stage 'final' and 'handling' (migration 023).
-- The rows go to og.assignment_pending, in one INSERT per statement, case by case in the
-- order of their last ledger rows, each case's rows in the order above, to be numbered and
-- announced at commit by og.assignment_number; the first row of a transaction is marked,
-- which queues that deferred trigger once.
--
-- Once per statement, not once per row (as before migration 022): archive opens the cases
-- of a whole batch with one INSERT (og.store_opened), and a row trigger cost a PL/pgSQL
-- call, an INSERT and its executor start-up per case, a third of the database's time per
-- event.

CREATE OR REPLACE FUNCTION og.feed_case_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp AS $$
DECLARE
  -- Rows of this transaction already pending: the statement does not see its own rows,
  -- so the NOT EXISTS is about earlier statements'.
  earlier constant boolean := og.pending_exists();
BEGIN
  -- Owner's rights, so only og.case's own triggers may run it: no EXECUTE for PUBLIC
  -- (below), and a trigger on any other table (a login's temporary one, with rows it made
  -- up) is refused. Before, a writer or reader login could forge feed rows that way.
  IF TG_RELID <> 'og.case'::regclass THEN
    RAISE EXCEPTION 'og.feed_case_change() makes the feed of og.case only, not of %',
      TG_RELID::regclass;
  END IF;
  IF TG_OP = 'INSERT' THEN
    -- Opened: also when opened closed in its unit's name (社区自办); state says so.
    INSERT INTO og.assignment_pending (first_of_xact, unit_code, case_id, kind, state,
                                       deadline_at, ledger_id)
      SELECT NOT earlier AND row_number() OVER (ORDER BY f.ledger_id, f.case_id, f.part) = 1,
             f.unit_code, f.case_id, f.kind, f.state, f.deadline_at, f.ledger_id
        FROM new_case n,
             LATERAL (VALUES (1, n.unit_code, 'assigned'), (2, n.supervisor_unit, 'supervise'))
               AS p(part, unit_code, kind),
             LATERAL (SELECT p.part, p.unit_code, n.case_id, p.kind, n.state, n.deadline_at,
                             n.last_ledger_id) AS f(part, unit_code, case_id, kind, state,
                                                    deadline_at, ledger_id)
       WHERE p.unit_code IS NOT NULL
       ORDER BY f.ledger_id, f.case_id, f.part;
    RETURN NULL;
  END IF;
  INSERT INTO og.assignment_pending (first_of_xact, unit_code, case_id, kind, state,
                                     deadline_at, ledger_id)
    SELECT NOT earlier AND row_number() OVER (ORDER BY r.ledger_id, r.case_id, r.part, r.unit_code) = 1,
           r.unit_code, r.case_id, r.kind, r.state, r.deadline_at, r.ledger_id
      FROM (SELECT n.case_id, n.state, n.deadline_at, n.last_ledger_id AS ledger_id,
                   n.unit_code, o.unit_code AS old_unit, n.supervisor_unit AS sup,
                   o.supervisor_unit AS old_sup, n.area_code, n.paused_at,
                   o.paused_at AS old_paused, o.deadline_at AS old_deadline,
                   n.extension_lapsed_at AS lapsed, o.extension_lapsed_at AS old_lapsed,
                   n.stage = 'final' AS is_final, o.stage = 'final' AS was_final, n.stage,
                   o.stage AS old_stage
              FROM new_case n JOIN old_case o ON o.case_id = n.case_id) c,
           LATERAL (
             -- The case went to another unit, or left one.
             SELECT 1, c.unit_code, 'assigned'
              WHERE c.unit_code IS DISTINCT FROM c.old_unit AND c.unit_code IS NOT NULL
             UNION ALL
             SELECT 2, c.old_unit, 'withdrawn'
              WHERE c.unit_code IS DISTINCT FROM c.old_unit AND c.old_unit IS NOT NULL
             UNION ALL
             -- The same unit keeps the case. Closed or voided, by whoever: it can stop work.
             -- Reopened, or back from its check (返工: the centre failed it), to be worked
             -- on again. deadline_at NULL: the clock stopped (shelved).
             SELECT 3, c.unit_code,
                    CASE WHEN c.is_final AND NOT c.was_final THEN 'finished'
                         WHEN c.was_final AND NOT c.is_final THEN 'reopened'
                         WHEN c.stage = 'handling' AND c.old_stage = 'checking' THEN 'reopened'
                         ELSE 'deadline_changed' END
              WHERE c.unit_code = c.old_unit
                AND ((c.is_final AND NOT c.was_final) OR (c.was_final AND NOT c.is_final)
                     OR (c.stage = 'handling' AND c.old_stage = 'checking')
                     OR (c.stage = 'handling'
                         AND (c.deadline_at IS DISTINCT FROM c.old_deadline
                              OR (c.old_paused IS NOT NULL AND c.paused_at IS NULL))))
             UNION ALL
             -- A supervision ends when the case leaves it or is finished; a case reopened
             -- after that starts without a supervisor, so the end is told once.
             SELECT 4, c.old_sup, 'supervision_ended'
              WHERE c.old_sup IS NOT NULL AND NOT c.was_final
                AND (c.sup IS DISTINCT FROM c.old_sup OR c.is_final)
             UNION ALL
             SELECT 5, c.sup, 'supervise'
              WHERE c.sup IS NOT NULL AND c.sup IS DISTINCT FROM c.old_sup
             UNION ALL
             -- A request lapsed undecided; then, or on its own, a new one (申请延期) waits
             -- for a supervising unit of the case's community, street or district: each
             -- hears of it (never the unit that asked). A request received after the one
             -- before it lapsed, decided before the scan recorded that lapse, does both in
             -- one decision: the clock paused before and after, at another moment.
             -- Never the unit that asked, which held the case before this decision (its
             -- return may have recorded the lapse and given the case to one of them).
             -- The lapse and the end below are told to the units told of the request
             -- (og.extension_asked: its extension_requested rows), whoever supervises the
             -- case's areas now (migration 031).
             SELECT DISTINCT 6, v.unit_code, 'extension_lapsed'
               FROM og.extension_asked(c.case_id, c.area_code) v(unit_code)
              WHERE c.lapsed IS NOT NULL AND c.lapsed IS DISTINCT FROM c.old_lapsed
                AND v.unit_code IS DISTINCT FROM c.old_unit
             UNION ALL
             -- A pending request ended otherwise: decided (by one of them), ended by the
             -- holder's own step, or the case voided. Told to the units asked.
             SELECT DISTINCT 6, v.unit_code, 'extension_ended'
               FROM og.extension_asked(c.case_id, c.area_code) v(unit_code)
              WHERE c.old_paused IS NOT NULL AND c.paused_at IS NULL
                AND c.lapsed IS NOT DISTINCT FROM c.old_lapsed
                AND v.unit_code IS DISTINCT FROM c.old_unit
             UNION ALL
             SELECT DISTINCT 7, v.unit_code, 'extension_requested'
               FROM og.supervisor v
              WHERE c.paused_at IS NOT NULL AND c.paused_at IS DISTINCT FROM c.old_paused
                AND v.area_code IN (left(c.area_code, 12), left(c.area_code, 9),
                                    left(c.area_code, 6))
                AND v.unit_code IS DISTINCT FROM c.unit_code
           ) p(part, unit_code, kind),
           LATERAL (SELECT p.part, p.unit_code, c.case_id, p.kind, c.state, c.deadline_at,
                           c.ledger_id) AS r(part, unit_code, case_id, kind, state,
                                             deadline_at, ledger_id)
     ORDER BY r.ledger_id, r.case_id, r.part, r.unit_code;
  RETURN NULL;
END $$;

REVOKE ALL ON FUNCTION og.feed_case_change() FROM PUBLIC;
