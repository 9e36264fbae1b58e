-- feed.my_units: the units whose assignments the current login may read; every registered
-- unit for auditors and the owner.

CREATE OR REPLACE VIEW feed.my_units WITH (security_barrier) AS
  SELECT h.code AS unit_code, h.name AS unit_name
    FROM og.handling_unit h
   WHERE pg_has_role('onegrid_auditor', 'USAGE') OR pg_has_role('onegrid_owner', 'USAGE')
      OR h.code IN (SELECT s.unit_code FROM og.feed_subscriber s
                     WHERE s.role_name = current_user);

GRANT SELECT ON feed.my_units TO onegrid_feed, onegrid_auditor;
