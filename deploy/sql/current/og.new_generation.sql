-- og.new_generation(why): opens the database's next generation (og.database_generation,
-- migration 028) and returns its number. For a database that went back in time (restored
-- from a backup, a standby promoted) every counter that told anyone anything moves past
-- whatever the lost time can have given, so that nothing given before is given again:
--   - each shard's fencing epoch (og.dispatch_epoch): + at least 1,000,000, so that the
--     records of a dispatch that loaded the lost state are older than any epoch the
--     database gives from now on, and dropped (og.begin_batch), never committed;
--   - case numbers: og.database_generation.case_number_floor, at least 1,000,000 above the
--     highest case number of any district (dispatch numbers every district's cases above
--     it: a district with no case left may have had some);
--   - the feed's seq (og.assignment_counter), ledger, batch and rejection ids: + at least
--     1,000,000,000 (a city's year is millions of ledger rows).
-- Each moves to a round number (a multiple of the step, at least one step above), so a
-- reader sees the change: case 650204-02000001 is of a later generation than
-- 650204-00000413.
-- The identity recorded is the one the database has now. Run by og.generation_check when
-- it finds a new identity; by an operator (as the database's owner or the superuser) after
-- a restore that keeps the identity: a file-system snapshot put back (docs/operating.md,
-- "Backups and restores"). The daemons must be restarted after it: dispatch's memory and
-- archive's held records are of the old generation (og.generation_check's callers notice a
-- generation they did not load).
-- Serialised by the table's lock: two callers finding the same change open one generation.

CREATE OR REPLACE FUNCTION og.new_generation(p_why text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp AS $$
DECLARE
  g integer;
  max_case bigint;
  floor_ bigint;
  moved jsonb := '{}';
  s text;
  v bigint;
  target bigint;
BEGIN
  LOCK TABLE og.database_generation IN EXCLUSIVE MODE;
  SELECT max(generation) INTO g FROM og.database_generation;
  -- Fencing epochs.
  SELECT coalesce(max(epoch), 0) INTO v FROM og.dispatch_epoch;
  target := (v / 1000000 + 2) * 1000000;
  UPDATE og.dispatch_epoch SET epoch = epoch + (target - v);
  moved := moved || jsonb_build_object('epoch', jsonb_build_array(v, target));
  -- Case numbers: every id is "district-number" (dispatch's og_cases_open).
  SELECT greatest(coalesce(max(substr(c.case_id, length(c.district_code) + 2)::bigint), 0),
                  (SELECT coalesce(max(d.case_number_floor), 0) FROM og.database_generation d))
    INTO max_case FROM og.case c;
  floor_ := (max_case / 1000000 + 2) * 1000000;
  moved := moved || jsonb_build_object('case_number', jsonb_build_array(max_case, floor_));
  -- The feed's seq.
  SELECT last_seq INTO v FROM og.assignment_counter FOR UPDATE;
  target := (v / 1000000000 + 2) * 1000000000;
  UPDATE og.assignment_counter SET last_seq = target;
  moved := moved || jsonb_build_object('feed_seq', jsonb_build_array(v, target));
  -- Ids. A sequence's last value is the one given (or its start, never given).
  FOREACH s IN ARRAY ARRAY['og.ledger_id_seq', 'og.batch_id_seq',
                           pg_get_serial_sequence('og.rejection', 'rejection_id')] LOOP
    EXECUTE format('SELECT last_value FROM %s', s) INTO v;
    target := (v / 1000000000 + 2) * 1000000000;
    PERFORM setval(s, target);
    moved := moved || jsonb_build_object(s, jsonb_build_array(v, target));
  END LOOP;
  INSERT INTO og.database_generation (generation, system_identifier, database_oid, timeline, why,
                                      case_number_floor, moved)
    SELECT g + 1, i.system_identifier, i.database_oid, i.timeline,
           left(coalesce(nullif(p_why, ''), 'by hand'), 500), floor_, moved
      FROM og.database_identity() i;
  RAISE WARNING 'onegrid: database generation % began (%): counters moved %', g + 1, p_why, moved;
  RETURN g + 1;
END $$;

REVOKE ALL ON FUNCTION og.new_generation(text) FROM PUBLIC;
