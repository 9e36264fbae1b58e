-- audit.extensions (延期记录): every extension request (申请延期) and decision on one: asked
-- by whom and for how many working days, decided by whom, and the deadline before and
-- after. A request no supervising unit decided within [dispatch] extension_decision_days
-- lapses: dispatch's own event of type 'extension_lapsed' (step 'EXTENSION_LAPSED', no
-- unit), after which the clock runs again. A lapse dispatch had not recorded yet when the
-- unit's next step came (its next request, or any other status update) is recorded by that
-- step's decision: a row 'EXTENSION_LAPSED' of its own too, with the same ledger_id, before
-- the step's row (order by ledger_id, then lapse first). Before, such a lapse was not shown.
-- That lapse's row shows the deadline the lapse left (the decision's lapse_deadline) and no
-- pause; the step's row shows that deadline as its deadline before. (Decisions stored
-- before lapse_deadline existed show the deadline after the step in the lapse's row, and
-- the one before the lapse as the step's deadline before.)

CREATE OR REPLACE VIEW audit.extensions AS
  SELECT l.case_id,
         CASE WHEN e.event_type = 'extension_lapsed' THEN 'EXTENSION_LAPSED'
              ELSE e.detail #>> '{status,status}' END AS step,
         e.detail #>> '{status,unit}' AS unit,
         (e.detail #>> '{status,extension_working_days}')::integer AS working_days,
         e.detail #>> '{status,note}' AS note,
         (l.detail ->> 'decided')::timestamptz AS decided_at,
         coalesce(l.detail ->> 'lapse_deadline', p.detail ->> 'deadline')::timestamptz
           AS deadline_before,
         (l.detail ->> 'deadline')::timestamptz AS deadline_after,
         (l.detail ->> 'paused_at')::timestamptz AS paused_at, l.ledger_id
    FROM og.ledger l
    JOIN og.ledger e ON e.kind = 'event' AND e.source_system = l.source_system
                    AND e.source_event_id = l.source_event_id
    LEFT JOIN LATERAL (
      SELECT q.detail FROM og.ledger q
       WHERE q.case_id = l.case_id AND q.kind = 'decision' AND q.ledger_id < l.ledger_id
       ORDER BY q.ledger_id DESC LIMIT 1) p ON true
   WHERE l.kind = 'decision'
     AND (e.event_type = 'extension_lapsed'
          OR e.event_type = 'status'
             AND e.detail #>> '{status,status}' IN ('STATUS_EXTENSION_REQUESTED', 'STATUS_EXTENDED',
                                                    'STATUS_EXTENSION_REFUSED'))
  UNION ALL
  -- Lapses recorded by another event's decision: the lapse moment changed with it.
  SELECT l.case_id, 'EXTENSION_LAPSED', NULL, NULL, NULL,
         (l.detail ->> 'decided')::timestamptz, (p.detail ->> 'deadline')::timestamptz,
         coalesce(l.detail ->> 'lapse_deadline', l.detail ->> 'deadline')::timestamptz,
         NULL::timestamptz, -- the clock ran again from the lapse on
         l.ledger_id
    FROM og.ledger l
    LEFT JOIN LATERAL (
      SELECT q.detail FROM og.ledger q
       WHERE q.case_id = l.case_id AND q.kind = 'decision' AND q.ledger_id < l.ledger_id
       ORDER BY q.ledger_id DESC LIMIT 1) p ON true
   WHERE l.kind = 'decision' AND l.detail ? 'extension_lapsed'
     AND l.event_type IS DISTINCT FROM 'extension_lapsed'
     AND (p.detail ->> 'extension_lapsed') IS DISTINCT FROM (l.detail ->> 'extension_lapsed');

CREATE OR REPLACE VIEW audit."延期记录" AS SELECT * FROM audit.extensions;
COMMENT ON VIEW audit.extensions IS '延期记录: extension requests, approvals, refusals and lapses, with the deadline before and after';
GRANT SELECT ON audit.extensions, audit."延期记录" TO onegrid_auditor;
