-- feed.assignments: what a handling unit's system reads (`onegridctl feed`): its
-- assignments (og.assignment, og.feed_case_change) with what a unit needs to start work,
-- after the last seq it has seen. A login reads the rows of the units an operator granted
-- it (og.feed_grant), nothing else; auditors and the owner read them all. current_user in
-- a view is the querying login. security_barrier: the filter runs before any condition the
-- reader adds, so a function of its own in WHERE (in pg_temp, say) never sees another
-- unit's row.

CREATE OR REPLACE VIEW feed.assignments WITH (security_barrier) AS
  SELECT a.seq, a.unit_code, a.kind, a.case_id, a.state, a.deadline_at, a.recorded_at,
         c.category_code, c.area_code, c.title, c.latitude, c.longitude, c.contacts
    FROM og.assignment a JOIN og.case c USING (case_id)
   WHERE pg_has_role('onegrid_auditor', 'USAGE') OR pg_has_role('onegrid_owner', 'USAGE')
      OR a.unit_code IN (SELECT s.unit_code FROM og.feed_subscriber s
                          WHERE s.role_name = current_user);

GRANT SELECT ON feed.assignments TO onegrid_feed, onegrid_auditor;
