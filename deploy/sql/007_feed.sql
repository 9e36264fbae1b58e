-- 007: outbound assignments. Every time a case is given to a unit (opened, re-routed after
-- a return, reassigned) or a unit is asked to supervise it (督办), a row is appended to
-- og.assignment in the same transaction as the decision, with a sequence number. A
-- handling unit's system reads the rows for its unit after the last sequence number it
-- has seen — so one that was offline catches up without missing anything — and can LISTEN
-- on channel "onegrid_assignment" to hear of new ones at once (the payload is the
-- sequence number). `onegridctl feed` does both.

-- The subscribers' group role; operators make a login per handling unit's system in it.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'onegrid_feed') THEN
    CREATE ROLE onegrid_feed NOLOGIN;
  END IF;
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO onegrid_feed', current_database());
END $$;

SET LOCAL ROLE onegrid_owner;

CREATE TABLE og.assignment (
  seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  unit_code   text NOT NULL,
  case_id     text NOT NULL,
  kind        text NOT NULL CHECK (kind IN ('assigned', 'withdrawn', 'supervise')),
  state       text NOT NULL,
  deadline_at timestamptz,
  ledger_id   bigint NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON og.assignment (unit_code, seq);
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON og.assignment
  FOR EACH ROW EXECUTE FUNCTION og.refuse_change();

-- Appends the feed rows a change of the case's unit or supervisor calls for.
CREATE FUNCTION og.feed_case_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og AS $$
DECLARE
  s bigint;
BEGIN
  IF NEW.unit_code IS NOT NULL AND
     (TG_OP = 'INSERT' OR NEW.unit_code IS DISTINCT FROM OLD.unit_code) THEN
    INSERT INTO og.assignment (unit_code, case_id, kind, state, deadline_at, ledger_id)
      VALUES (NEW.unit_code, NEW.case_id, 'assigned', NEW.state, NEW.deadline_at, NEW.last_ledger_id)
      RETURNING seq INTO s;
    PERFORM pg_notify('onegrid_assignment', s::text);
  END IF;
  IF TG_OP = 'UPDATE' AND OLD.unit_code IS NOT NULL AND
     NEW.unit_code IS DISTINCT FROM OLD.unit_code THEN
    INSERT INTO og.assignment (unit_code, case_id, kind, state, deadline_at, ledger_id)
      VALUES (OLD.unit_code, NEW.case_id, 'withdrawn', NEW.state, NEW.deadline_at, NEW.last_ledger_id)
      RETURNING seq INTO s;
    PERFORM pg_notify('onegrid_assignment', s::text);
  END IF;
  IF NEW.supervisor_unit IS NOT NULL AND
     (TG_OP = 'INSERT' OR NEW.supervisor_unit IS DISTINCT FROM OLD.supervisor_unit) THEN
    INSERT INTO og.assignment (unit_code, case_id, kind, state, deadline_at, ledger_id)
      VALUES (NEW.supervisor_unit, NEW.case_id, 'supervise', NEW.state, NEW.deadline_at,
              NEW.last_ledger_id)
      RETURNING seq INTO s;
    PERFORM pg_notify('onegrid_assignment', s::text);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER feed AFTER INSERT OR UPDATE ON og.case
  FOR EACH ROW EXECUTE FUNCTION og.feed_case_change();

-- What subscribers read: the assignment with what a unit needs to start work.
CREATE SCHEMA feed;
REVOKE ALL ON SCHEMA feed FROM PUBLIC;
GRANT USAGE ON SCHEMA feed TO onegrid_feed, onegrid_auditor;
CREATE VIEW feed.assignments AS
  SELECT a.seq, a.unit_code, a.kind, a.case_id, a.state, a.deadline_at, a.recorded_at,
         c.category_code, c.area_code, c.title, c.latitude, c.longitude, c.contacts
    FROM og.assignment a JOIN og.case c USING (case_id);
GRANT SELECT ON feed.assignments TO onegrid_feed, onegrid_auditor;
