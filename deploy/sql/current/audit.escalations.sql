-- audit.escalations (督办记录): every escalation of an overdue case (督办): when, to which
-- level and supervising unit, and the deadline then. An open case past its deadline
-- escalates one level up the hierarchy (grid -> community -> street -> district), and
-- keeps escalating while it stays open; each escalation is a ledger event of its own
-- (source "onegrid", id "esc-<case id>-<level>-<deadline>": a case on a new clock escalates
-- again from level 1).

CREATE OR REPLACE VIEW audit.escalations AS
  SELECT l.case_id, (l.detail ->> 'escalation_level')::integer AS level,
         CASE (l.detail ->> 'escalation_level')::integer WHEN 1 THEN 'community'
              WHEN 2 THEN 'street' ELSE 'district' END AS level_name,
         l.detail ->> 'supervisor' AS supervisor_unit,
         (l.detail ->> 'decided')::timestamptz AS escalated_at,
         (l.detail ->> 'deadline')::timestamptz AS deadline_at, l.ledger_id
    FROM og.ledger l
   WHERE l.kind = 'decision' AND l.detail ->> 'kind' = 'KIND_ESCALATE';

CREATE OR REPLACE VIEW audit."督办记录" AS SELECT * FROM audit.escalations;
COMMENT ON VIEW audit.escalations IS '督办记录: every escalation of an overdue case';
GRANT SELECT ON audit.escalations, audit."督办记录" TO onegrid_auditor;
