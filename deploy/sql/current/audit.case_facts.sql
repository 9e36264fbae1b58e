-- audit.case_facts: what the KPIs (audit.kpi) and audit.overdue_cases are computed from:
-- per case, facts taken from its decisions: when it was first resolved and first closed
-- and the deadline then, whether it was ever returned (退回: state 'returned', or a
-- decision naming the unit that returned it), how often it was reworked (resolved, then in
-- progress again; closed, then dispatched again), its last evaluation, whether it is open.

CREATE OR REPLACE VIEW audit.case_facts AS
  WITH d AS (
    SELECT l.case_id, l.ledger_id, l.detail ->> 'state' AS state,
           l.detail ->> 'previous_state' AS previous_state,
           l.detail ->> 'returned_by' AS returned_by,
           coalesce((l.detail ->> 'decided')::timestamptz, l.recorded_at) AS decided_at,
           (l.detail ->> 'deadline')::timestamptz AS deadline_at
      FROM og.ledger l WHERE l.kind = 'decision' AND l.case_id IS NOT NULL
  ), e AS (
    SELECT l.case_id, l.detail #>> '{evaluation,result}' AS result, l.ledger_id
      FROM og.ledger l WHERE l.kind = 'event' AND l.event_type = 'evaluation'
  )
  SELECT c.case_id, c.district_code, left(c.area_code, 9) AS street_code,
         left(c.area_code, 12) AS community_code, c.unit_code, c.category_code, c.state,
         c.opened_at, c.deadline_at, c.contacts,
         r.decided_at AS first_resolved_at, r.deadline_at AS deadline_when_resolved,
         k.decided_at AS first_closed_at, k.deadline_at AS deadline_when_closed,
         EXISTS (SELECT 1 FROM d WHERE d.case_id = c.case_id
                   AND (d.state = 'returned' OR d.returned_by IS NOT NULL)) AS returned,
         (SELECT count(*) FROM d WHERE d.case_id = c.case_id
             AND ((d.previous_state = 'resolved' AND d.state = 'in_progress')
               OR (d.previous_state = 'closed' AND d.state = 'dispatched'))) AS reworks,
         (SELECT e.result FROM e WHERE e.case_id = c.case_id ORDER BY e.ledger_id DESC LIMIT 1)
           AS last_evaluation,
         c.state NOT IN ('resolved', 'checked', 'closed', 'evaluated', 'voided') AS open
    FROM og.case c
    LEFT JOIN LATERAL (SELECT * FROM d WHERE d.case_id = c.case_id AND d.state = 'resolved'
                        ORDER BY d.ledger_id LIMIT 1) r ON true
    LEFT JOIN LATERAL (SELECT * FROM d WHERE d.case_id = c.case_id AND d.state = 'closed'
                        ORDER BY d.ledger_id LIMIT 1) k ON true;

GRANT SELECT ON audit.case_facts TO onegrid_auditor;
