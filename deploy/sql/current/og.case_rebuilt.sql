-- og.case_rebuilt: the case projection (og.case) rebuilt from the ledger alone: each case
-- from the decision that opened it, the event it was opened for (a case split off another
-- takes its title, channel, time, position and origin from the report it was opened for)
-- and its last decision (decisions carry the case's absolute state), and the facts the
-- auditor's views read: og.case_facts_rebuilt finds both decisions and the facts in one
-- pass over the ledger, the rest are lookups by key. The columns follow from those ledger
-- rows by the mapping archive stores them with (og.case_opening, og.decision_case). Its columns are og.case's, in the
-- same order. `onegridctl rebuild-cases` compares it with og.case
-- (audit.projection_differences), or replaces og.case with it.

CREATE OR REPLACE VIEW og.case_rebuilt AS
  SELECT o.case_id, b.shard, op.district_code, op.area_code, op.category_code, m.state,
         m.unit_code, m.rule_id, m.rule_version, op.title, op.channel, oe.source_system,
         oe.source_event_id, op.occurred_at, op.opened_at, m.deadline_at, m.closed_at, m.contacts,
         le.recorded_at AS updated_at, le.ledger_id AS last_ledger_id, m.escalation_level,
         m.supervisor_unit, op.latitude, op.longitude, m.severity, m.paused_at, m.extension_days,
         m.returned_units, f.first_resolved_at, f.deadline_when_resolved, f.first_closed_at,
         f.deadline_when_closed, f.returned, f.reworks, f.last_evaluation, m.stage, m.clock,
         m.clock_started_at, m.extension_lapsed_at, m.lapsed_paused_at, m.lapsed_paused_deadline_at
    FROM og.case_facts_rebuilt f
    JOIN og.ledger o ON o.ledger_id = f.opened_ledger_id AND o.recorded_at = f.opened_recorded_at
    JOIN og.batch b ON b.batch_id = o.batch_id
    JOIN og.ledger last ON last.ledger_id = f.last_ledger_id AND last.recorded_at = f.last_recorded_at
    JOIN og.ledger oe ON oe.kind = 'event'
                     AND oe.source_system = coalesce(o.detail ->> 'report_source', o.source_system)
                     AND oe.source_event_id = coalesce(o.detail ->> 'report_event_id', o.source_event_id)
    JOIN og.ledger le ON le.kind = 'event' AND le.source_system = last.source_system
                     AND le.source_event_id = last.source_event_id,
         LATERAL og.case_opening(o.detail, oe.detail) op,
         LATERAL og.decision_case(last.detail) m;
