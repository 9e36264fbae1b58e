-- og.case_opening(decision, report): the og.case columns a case takes when it is opened,
-- from the decision that opens it (KIND_OPEN_CASE) and the report it is opened for, both
-- as the ledger keeps them: the event's own detail, or, for a case split off another
-- (拆分), the merged report's (the decision's report_source, report_event_id). With
-- og.decision_case, the one mapping from the ledger to a case: og.open_cases stores it,
-- og.case_rebuilt rebuilds it.
--   district_code, area_code, category_code   the decision's district, grid, category
--   opened_at      the decision's "opened" (else when the report was received)
--   title          the report's or the sensor alert's title ('' for none)
--   channel        the report's channel; a sensor alert's is CHANNEL_SENSOR
--   occurred_at    the report's time
--   latitude, longitude   the report's location (NULL for none; a coordinate of 0 is
--                         absent from the JSON, and 0)
-- Not here: the shard (the batch's), source_system and source_event_id (the report's key).
-- SQL, set-returning, not SECURITY DEFINER: inlined where it is called in FROM.

CREATE OR REPLACE FUNCTION og.case_opening(d jsonb, report jsonb)
  RETURNS TABLE (district_code text, area_code text, category_code text,
                 opened_at timestamptz, title text, channel text, occurred_at timestamptz,
                 latitude double precision, longitude double precision)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT d ->> 'district', d ->> 'grid', d ->> 'category',
         coalesce(d ->> 'opened', report ->> 'received')::timestamptz,
         coalesce(report #>> '{report,title}', report #>> '{sensor_alert,title}', ''),
         CASE WHEN report ? 'report' THEN coalesce(report #>> '{report,channel}', 'CHANNEL_UNSPECIFIED')
              ELSE 'CHANNEL_SENSOR' END,
         (report ->> 'time')::timestamptz,
         CASE WHEN report ? 'location'
              THEN coalesce((report #>> '{location,latitude}')::double precision, 0) END,
         CASE WHEN report ? 'location'
              THEN coalesce((report #>> '{location,longitude}')::double precision, 0) END
$$;
