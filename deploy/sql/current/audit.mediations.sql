-- audit.mediations (调解记录): disputes resolved with a written agreement (调解), as the
-- resolving status update recorded it (how many parties signed, the SHA-256 of the signed
-- document, its date, the mediator, when the follow-up visit is due), and the follow-up
-- visit (回访): the resident's evaluation of the case.

CREATE OR REPLACE VIEW audit.mediations AS
  SELECT l.case_id, c.category_code, c.state,
         (l.detail #>> '{mediation,parties}')::integer AS parties,
         l.detail #>> '{mediation,agreement_sha256}' AS agreement_sha256,
         (l.detail #>> '{mediation,agreement_date}')::timestamptz AS agreement_date,
         l.detail #>> '{mediation,mediator}' AS mediator,
         (l.detail ->> 'follow_up_due')::timestamptz AS follow_up_due,
         f.recorded_at AS followed_up_at, f.detail #>> '{evaluation,result}' AS follow_up_result,
         l.ledger_id
    FROM og.ledger l
    JOIN og.case c USING (case_id)
    LEFT JOIN LATERAL (
      SELECT e.recorded_at, e.detail FROM og.ledger e
       WHERE e.case_id = l.case_id AND e.kind = 'event' AND e.event_type = 'evaluation'
         AND e.ledger_id > l.ledger_id
       ORDER BY e.ledger_id LIMIT 1) f ON true
   WHERE l.kind = 'decision' AND l.detail ? 'mediation';

CREATE OR REPLACE VIEW audit."调解记录" AS SELECT * FROM audit.mediations;
COMMENT ON VIEW audit.mediations IS '调解记录: disputes resolved by a written agreement, and their follow-up visits';
GRANT SELECT ON audit.mediations, audit."调解记录" TO onegrid_auditor;
