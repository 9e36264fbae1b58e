-- og.new_generation(why): opens the database's next generation (og.database_generation,
-- migration 028) and returns its number. For a database that went back in time (restored
-- from a backup, a standby promoted) every counter that told anyone anything moves past
-- whatever the lost time can have given, so that nothing given before is given again:
--   - every shard's fencing epoch (og.dispatch_epoch), to one above the highest there and
--     the time (epochs are the time they were taken, og.take_epoch: a shard that took its
--     last one long ago may have taken another in the lost time, above where it stands),
--     so that the records of a dispatch that loaded the lost state are older than any
--     epoch the database gives from now on, and dropped (og.begin_batch), never committed;
--   - case numbers: moved.case_number (dispatch numbers every district's cases above
--     it, og.generation_moved: a district with no case left may have had some);
--   - the feed's seq (og.assignment_counter), ledger, batch and rejection ids, and
--     routing rules' ids (a case and its decisions name the rule that routed it).
-- Where to: the lost time is not in the database, and the same backup can be restored
-- twice (the first restore went wrong; a failover, then a restore from before it), the
-- second holding nothing the first did not. What grows between them is the server's clock.
-- So each counter moves to the time, in microseconds since 1970 (case numbers: in
-- milliseconds, 13 digits, "650204-1796400000001" after "650204-00000413", sorting after
-- every 8-digit number below 17,964,000), or above its highest value in the database, or
-- above where an earlier generation moved it, whichever is highest. That holds while a
-- counter gives fewer numbers than that between two restores (one a microsecond; a
-- thousand case numbers a second in a district, the resent backlog of a restore included)
-- and while the server's clock does not step back.
-- The identity recorded is the one the database has now. Run by og.generation_check when
-- it finds a new identity; by og.epoch_went_back when a dispatch finds the shard's epoch
-- below the one it took; by an operator (as the database's owner or the superuser) after
-- a restore that keeps the identity (docs/operating.md, "Backups and restores"), with the
-- daemons stopped: dispatch's memory and archive's held records are of the old time.
-- Serialised by the table's lock: two callers finding the same change open one generation.
-- The server's log gets a WARNING with what moved: the record of it outside the database.

CREATE OR REPLACE FUNCTION og.new_generation(p_why text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp AS $$
DECLARE
  g integer;
  now_us bigint;
  moved jsonb := '{}';
  s text;
  v bigint;
  target bigint;
BEGIN
  LOCK TABLE og.database_generation IN EXCLUSIVE MODE;
  -- The time once the lock is ours: counters given while this waited are below it.
  now_us := (extract(epoch FROM clock_timestamp()) * 1000000)::bigint;
  SELECT max(generation) INTO g FROM og.database_generation;
  -- Fencing epochs. An epoch a dispatch took since v was read (og.take_epoch commits
  -- without this lock) is never moved back: each row is read again as it is updated.
  SELECT coalesce(max(epoch), 0) INTO v FROM og.dispatch_epoch;
  target := greatest(v + 1, now_us + 1, og.generation_moved('epoch') + 1);
  UPDATE og.dispatch_epoch SET epoch = greatest(epoch + 1, target);
  moved := moved || jsonb_build_object('epoch', jsonb_build_array(v, target));
  -- Case numbers: every id dispatch makes is "district-number" (og_cases_open). Any other
  -- id has no number (NULL), as for dispatch's load (og.case_number's expression), so that
  -- one hand-made or damaged id cannot stop a generation from opening.
  SELECT coalesce(max(CASE WHEN starts_with(c.case_id, c.district_code || '-')
                                AND substr(c.case_id, length(c.district_code) + 2) ~ '^[0-9]{1,18}$'
                           THEN substr(c.case_id, length(c.district_code) + 2)::bigint END), 0)
    INTO v FROM og.case c;
  target := greatest(v, now_us / 1000, og.generation_moved('case_number'));
  moved := moved || jsonb_build_object('case_number', jsonb_build_array(v, target));
  -- The feed's seq.
  SELECT last_seq INTO v FROM og.assignment_counter FOR UPDATE;
  target := greatest(v, now_us, og.generation_moved('feed_seq'));
  UPDATE og.assignment_counter SET last_seq = target;
  moved := moved || jsonb_build_object('feed_seq', jsonb_build_array(v, target));
  -- Ids. A sequence's last value is the last one given (or its start, never given).
  FOREACH s IN ARRAY ARRAY['og.ledger_id_seq', 'og.batch_id_seq',
                           pg_get_serial_sequence('og.rejection', 'rejection_id'),
                           pg_get_serial_sequence('og.routing_rule', 'rule_id')] LOOP
    EXECUTE format('SELECT last_value FROM %s', s) INTO v;
    target := greatest(v, now_us, og.generation_moved(s));
    PERFORM setval(s, target);
    moved := moved || jsonb_build_object(s, jsonb_build_array(v, target));
  END LOOP;
  INSERT INTO og.database_generation (generation, system_identifier, database_oid, timeline, why,
                                      moved)
    SELECT g + 1, i.system_identifier, i.database_oid, i.timeline,
           left(coalesce(nullif(p_why, ''), 'by hand'), 500), moved
      FROM og.database_identity() i;
  RAISE WARNING 'onegrid: database generation % began (%): counters moved %', g + 1, p_why, moved;
  RETURN g + 1;
END $$;

REVOKE ALL ON FUNCTION og.new_generation(text) FROM PUBLIC;
