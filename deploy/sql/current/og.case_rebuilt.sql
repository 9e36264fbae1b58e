-- og.case_rebuilt: the case projection (og.case) rebuilt from the ledger alone: each case
-- from the decision that opened it, the event it was opened for (a case split off another
-- takes its title, channel, time, position and origin from the report it was opened for)
-- and its last decision (decisions carry the case's absolute state), and the facts the
-- auditor's views read: og.case_facts_rebuilt finds both decisions and the facts in one
-- pass over the ledger, the rest are lookups by key. Its columns are og.case's, in the
-- same order. `onegridctl rebuild-cases` compares it with og.case
-- (audit.projection_differences), or replaces og.case with it.

CREATE OR REPLACE VIEW og.case_rebuilt AS
  SELECT o.case_id, b.shard, o.detail ->> 'district' AS district_code,
         o.detail ->> 'grid' AS area_code, o.detail ->> 'category' AS category_code,
         last.detail ->> 'state' AS state,
         last.detail ->> 'unit' AS unit_code, (last.detail ->> 'rule_id')::bigint AS rule_id,
         (last.detail ->> 'rule_version')::integer AS rule_version,
         coalesce(oe.detail #>> '{report,title}', oe.detail #>> '{sensor_alert,title}') AS title,
         coalesce(oe.detail #>> '{report,channel}', 'CHANNEL_SENSOR') AS channel,
         oe.source_system, oe.source_event_id, (oe.detail ->> 'time')::timestamptz AS occurred_at,
         (o.detail ->> 'opened')::timestamptz AS opened_at,
         (last.detail ->> 'deadline')::timestamptz AS deadline_at,
         (last.detail ->> 'closed')::timestamptz AS closed_at,
         coalesce((last.detail ->> 'contacts')::integer, 1) AS contacts,
         le.recorded_at AS updated_at, le.ledger_id AS last_ledger_id,
         coalesce((last.detail ->> 'escalation_level')::integer, 0) AS escalation_level,
         last.detail ->> 'supervisor' AS supervisor_unit,
         (oe.detail #>> '{location,latitude}')::double precision AS latitude,
         (oe.detail #>> '{location,longitude}')::double precision AS longitude,
         (last.detail ->> 'severity')::integer AS severity,
         (last.detail ->> 'paused_at')::timestamptz AS paused_at,
         (last.detail ->> 'extension_days')::integer AS extension_days,
         ARRAY(SELECT jsonb_array_elements_text(coalesce(last.detail -> 'returned_units',
                                                         '[]'::jsonb))) AS returned_units,
         f.first_resolved_at, f.deadline_when_resolved, f.first_closed_at, f.deadline_when_closed,
         f.returned, f.reworks, f.last_evaluation,
         -- dispatch's conclusions, from its last decision; one recorded before migration 023
         -- does not carry them, and means what og.case_stage and og.case_clock say.
         coalesce(last.detail ->> 'stage', og.case_stage(last.detail ->> 'state')) AS stage,
         coalesce(last.detail ->> 'clock',
                  og.case_clock(og.case_stage(last.detail ->> 'state'),
                                (last.detail ->> 'deadline')::timestamptz,
                                (last.detail ->> 'paused_at')::timestamptz)) AS clock
    FROM og.case_facts_rebuilt f
    JOIN og.ledger o ON o.ledger_id = f.opened_ledger_id AND o.recorded_at = f.opened_recorded_at
    JOIN og.batch b ON b.batch_id = o.batch_id
    JOIN og.ledger last ON last.ledger_id = f.last_ledger_id AND last.recorded_at = f.last_recorded_at
    JOIN og.ledger oe ON oe.kind = 'event'
                     AND oe.source_system = coalesce(o.detail ->> 'report_source', o.source_system)
                     AND oe.source_event_id = coalesce(o.detail ->> 'report_event_id', o.source_event_id)
    JOIN og.ledger le ON le.kind = 'event' AND le.source_system = last.source_system
                     AND le.source_event_id = last.source_event_id;
