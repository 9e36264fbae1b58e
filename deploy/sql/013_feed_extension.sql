-- 013: an extension request (申请延期, migration 010) is news for the units that may
-- decide it: the supervising units of the case's community, street and district (not the
-- unit that asked) each get an 'extension_requested' row in the assignment feed when a
-- case's clock is paused. Otherwise the feed is as 011 made it.

SET LOCAL ROLE onegrid_owner;

ALTER TABLE og.assignment DROP CONSTRAINT assignment_kind_check,
  ADD CONSTRAINT assignment_kind_check CHECK (kind IN (
    'assigned', 'withdrawn', 'supervise', 'finished', 'reopened', 'deadline_changed',
    'supervision_ended', 'extension_requested'));

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
  s bigint;
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
  FOR i IN 1 .. coalesce(array_length(units, 1), 0) LOOP
    INSERT INTO og.assignment (unit_code, case_id, kind, state, deadline_at, ledger_id)
      VALUES (units[i], NEW.case_id, kinds[i], NEW.state, NEW.deadline_at, NEW.last_ledger_id)
      RETURNING seq INTO s;
    PERFORM pg_notify('onegrid_assignment', s::text);
  END LOOP;
  RETURN NULL;
END $$;
