-- feed.assignments: what a handling unit's system reads (`onegridctl feed`): its
-- assignments (og.assignment, og.feed_case_change) with what a unit needs to start work,
-- after the last seq it has seen. A login reads the rows of the units an operator granted
-- it (og.feed_grant), nothing else; auditors and the owner read them all. current_user in
-- a view is the querying login. security_barrier: the filter runs before any condition the
-- reader adds, so a function of its own in WHERE (in pg_temp, say) never sees another
-- unit's row.
-- The case's columns are read row by row for the rows the filter let through (a LATERAL
-- subquery that OFFSET 0 keeps whole): the reader's conditions on them are applied after
-- the filter. security_barrier still lets a leakproof condition (=, < on text) go down to
-- the scan of the table it names, and EXPLAIN ANALYZE prints that scan's row counts: with
-- og.case joined whole, a login with no unit counted the cases of the whole city with any
-- title or position it guessed (review). The conditions on og.assignment's own columns still
-- go down to its scan, so that `seq > N` reads by the index: EXPLAIN ANALYZE can count other
-- units' feed rows (not their cases' contents).

CREATE OR REPLACE VIEW feed.assignments WITH (security_barrier) AS
  SELECT a.seq, a.unit_code, a.kind, a.case_id, a.state, a.deadline_at, a.recorded_at,
         c.category_code, c.area_code, c.title, c.latitude, c.longitude, c.contacts
    FROM og.assignment a,
         LATERAL (SELECT k.category_code, k.area_code, k.title, k.latitude, k.longitude,
                         k.contacts
                    FROM og.case k WHERE k.case_id = a.case_id OFFSET 0) c
   WHERE pg_has_role('onegrid_auditor', 'USAGE') OR pg_has_role('onegrid_owner', 'USAGE')
      OR a.unit_code IN (SELECT s.unit_code FROM og.feed_subscriber s
                          WHERE s.role_name = current_user);

GRANT SELECT ON feed.assignments TO onegrid_feed, onegrid_auditor;
