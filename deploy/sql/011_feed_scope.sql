-- 011: the assignment feed per unit, and the changes 007 left out.
--
-- Access: until now any login in onegrid_feed read every unit's rows. A login now reads
-- the rows of the units an operator granted it (og.feed_grant), nothing else; auditors
-- (and the owner) read them all. feed.my_units lists what the current login may read.
--
-- Kinds: besides assigned / withdrawn / supervise, the holding unit hears when its case is
-- finished (closed or voided), reopened (不满意) or its deadline moves while it keeps the
-- open case (延期, a paused clock resumed, a clock stopped by shelving or started again by
-- a joint meeting), and a supervisor when its supervision ends (the case went to another
-- supervisor, left supervision, or was finished). An extension request (申请延期, 010) is
-- news for the units that may decide it: the supervising units of the case's community,
-- street and district (never the unit that asked) each get 'extension_requested'. A
-- status update that only moves the case along its own lifecycle (accepted, in progress,
-- resolved, checked) adds no row.

-- og.feed_grant (owner's rights) makes a login a member of onegrid_feed.
DO $$
BEGIN
  IF NOT pg_has_role('onegrid_owner', 'onegrid_feed', 'MEMBER WITH ADMIN OPTION') THEN
    GRANT onegrid_feed TO onegrid_owner WITH ADMIN OPTION;
  END IF;
END $$;

SET LOCAL ROLE onegrid_owner;

-- Which login may read which unit's assignments. Role names, as pg_hba.conf has them: a
-- login dropped and made again under the same name keeps its units (revoke them first).
CREATE TABLE og.feed_subscriber (
  role_name  text NOT NULL,
  unit_code  text NOT NULL REFERENCES og.handling_unit (code),
  granted_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (role_name, unit_code)
);

-- Lets login p_role read unit p_unit's assignments, making it a member of onegrid_feed if
-- it is not. Returns false when it already could.
CREATE FUNCTION og.feed_grant(p_role text, p_unit text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og AS $$
DECLARE
  login boolean;
BEGIN
  SELECT rolcanlogin INTO login FROM pg_roles WHERE rolname = p_role;
  IF login IS NULL THEN
    RAISE EXCEPTION 'role "%" does not exist', p_role USING ERRCODE = 'undefined_object';
  END IF;
  -- The feed checks the login itself (current_user), not the groups it is in.
  IF NOT login THEN
    RAISE EXCEPTION 'role "%" cannot log in', p_role USING ERRCODE = 'invalid_parameter_value',
      HINT = 'Grant units to the login the subscribing system uses.';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM og.handling_unit WHERE code = p_unit) THEN
    RAISE EXCEPTION '"%" is not a registered handling unit', p_unit
      USING ERRCODE = 'foreign_key_violation';
  END IF;
  IF NOT pg_has_role(p_role, 'onegrid_feed', 'MEMBER') THEN
    EXECUTE format('GRANT onegrid_feed TO %I', p_role);
  END IF;
  INSERT INTO og.feed_subscriber (role_name, unit_code) VALUES (p_role, p_unit)
    ON CONFLICT DO NOTHING;
  RETURN FOUND;
END $$;

-- Takes unit p_unit's assignments from login p_role; it stays in onegrid_feed (with no
-- unit left it reads nothing). Returns false when it had no such grant.
CREATE FUNCTION og.feed_revoke(p_role text, p_unit text) RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, og AS $$
  WITH gone AS (
    DELETE FROM og.feed_subscriber WHERE role_name = p_role AND unit_code = p_unit RETURNING 1
  )
  SELECT count(*) > 0 FROM gone
$$;
-- Schema og is usable by the daemons' roles: only the owner may call these two.
REVOKE ALL ON FUNCTION og.feed_grant(text, text), og.feed_revoke(text, text) FROM PUBLIC;

-- The kinds of row, old and new.
ALTER TABLE og.assignment DROP CONSTRAINT assignment_kind_check,
  ADD CONSTRAINT assignment_kind_check CHECK (kind IN (
    'assigned', 'withdrawn', 'supervise', 'finished', 'reopened', 'deadline_changed',
    'supervision_ended', 'extension_requested'));

-- Appends the feed rows a change of a case calls for: at most one row for each part a unit
-- plays in it (holding the case now, having held it, supervising it now, having
-- supervised it), so no decision gives a unit two rows of one kind.
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

-- Who reads what. current_user in a view is the querying login. security_barrier: the
-- filter runs before any condition the reader adds, so a function of its own in WHERE
-- (in pg_temp, say) never sees another unit's row.
CREATE OR REPLACE VIEW feed.assignments WITH (security_barrier) AS
  SELECT a.seq, a.unit_code, a.kind, a.case_id, a.state, a.deadline_at, a.recorded_at,
         c.category_code, c.area_code, c.title, c.latitude, c.longitude, c.contacts
    FROM og.assignment a JOIN og.case c USING (case_id)
   WHERE pg_has_role('onegrid_auditor', 'USAGE') OR pg_has_role('onegrid_owner', 'USAGE')
      OR a.unit_code IN (SELECT s.unit_code FROM og.feed_subscriber s
                          WHERE s.role_name = current_user);

-- The units whose assignments the current login may read: every registered unit for
-- auditors and the owner.
CREATE VIEW feed.my_units WITH (security_barrier) AS
  SELECT h.code AS unit_code, h.name AS unit_name
    FROM og.handling_unit h
   WHERE pg_has_role('onegrid_auditor', 'USAGE') OR pg_has_role('onegrid_owner', 'USAGE')
      OR h.code IN (SELECT s.unit_code FROM og.feed_subscriber s
                     WHERE s.role_name = current_user);
GRANT SELECT ON feed.my_units TO onegrid_feed, onegrid_auditor;
