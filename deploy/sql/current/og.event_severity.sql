-- og.event_severity(e): the CAP severity of an event's report or sensor alert (its ledger
-- detail) as a number, 1 extreme .. 4 minor, as onegrid.v1 numbers them; NULL when it has
-- none. og.case_report keeps it for each report (og.store_event).

CREATE OR REPLACE FUNCTION og.event_severity(e jsonb) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
  SELECT array_position(ARRAY['SEVERITY_EXTREME', 'SEVERITY_SEVERE', 'SEVERITY_MODERATE',
                              'SEVERITY_MINOR'],
                        coalesce(e #>> '{report,severity}', e #>> '{sensor_alert,severity}'))
$$;
