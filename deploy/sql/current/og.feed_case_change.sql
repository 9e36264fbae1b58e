-- og.feed_case_change(): the assignment feed's rows for a change of a case (trigger feed,
-- AFTER INSERT OR UPDATE on og.case, for each row). At most one row for each part a unit
-- plays in the case (holding it now, having held it, supervising it now, having
-- supervised it), so no decision gives a unit two rows of one kind:
--   assigned / withdrawn    the case went to a unit / left it (opened, re-routed after a
--                           return, reassigned); also when opened closed in the unit's
--                           name (社区自办): state says so
--   finished / reopened     the unit keeps the case and it was closed or voided / reopened
--                           (不满意)
--   deadline_changed        the unit keeps the open case and its deadline moved (延期, a
--                           paused clock resumed, shelved: deadline NULL, a joint meeting
--                           started it again)
--   supervise / supervision_ended
--                           a supervisor (督办) was given the case / lost it (the case went
--                           to another supervisor, left supervision, or was finished)
--   extension_requested     an extension request (申请延期) waits for a supervising unit of
--                           the case's community, street or district: each hears of it
--                           (never the unit that asked)
-- A status update that only moves the case along its own lifecycle (accepted, in
-- progress, resolved, checked) adds no row.
-- The rows go to og.assignment_pending, in one INSERT, to be numbered and announced at
-- commit by og.assignment_number; the first row of a transaction is marked, which queues
-- that deferred trigger once.

CREATE OR REPLACE FUNCTION og.feed_case_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp AS $$
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
