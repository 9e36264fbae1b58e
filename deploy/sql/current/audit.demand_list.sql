-- audit.demand_list (需求清单): the demand list as it stands: cases shelved by a unit that
-- cannot solve them alone (the clock stops), awaiting a joint meeting (联席会), oldest
-- first, with who shelved them and why.

CREATE OR REPLACE VIEW audit.demand_list AS
  SELECT c.case_id, c.district_code, left(c.area_code, 12) AS community_code, c.category_code,
         c.title, c.unit_code AS shelved_by, c.contacts, s.shelved_at, s.note
    FROM og.case c
    LEFT JOIN LATERAL (
      SELECT (l.detail ->> 'decided')::timestamptz AS shelved_at, e.detail #>> '{status,note}' AS note
        FROM og.ledger l
        JOIN og.ledger e ON e.kind = 'event' AND e.source_system = l.source_system
                        AND e.source_event_id = l.source_event_id
       WHERE l.case_id = c.case_id AND l.kind = 'decision' AND l.detail ->> 'state' = 'shelved'
       ORDER BY l.ledger_id DESC LIMIT 1) s ON true
   WHERE c.state = 'shelved'
   ORDER BY s.shelved_at;

CREATE OR REPLACE VIEW audit."需求清单" AS SELECT * FROM audit.demand_list;
COMMENT ON VIEW audit.demand_list IS '需求清单: shelved cases awaiting a joint meeting (联席会)';
GRANT SELECT ON audit.demand_list, audit."需求清单" TO onegrid_auditor;
