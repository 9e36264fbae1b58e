-- audit.kpi (考核指标): the KPIs per month of filing and per district, street, community
-- and handling unit (level, code), from audit.case_facts. month is the first day of the
-- month of filing in Asia/Shanghai (a date: `WHERE month >= '2026-01-01'`). Rates are NULL
-- where their denominator is 0.
-- One GROUP BY per level, joined by UNION ALL, each naming its own column as code: the
-- conditions of a query for one level, code and month (`WHERE level = 'district' AND code
-- = '650204' AND month = '2026-05-01'`) reach the scan of og.case, the other levels are not
-- read, and og.case's index of month and district (case_month_district, migration 021)
-- finds a district's month of cases, or a month's cases for a street, community or unit.
-- (GROUPING SETS with coalesce() as code kept the conditions above the aggregate: every
-- case was read.) The branches count; the rates are computed once, above them.
-- Dropped and made again when applied (month was text).

DROP VIEW IF EXISTS audit.kpi CASCADE;

CREATE OR REPLACE VIEW audit.kpi AS
  SELECT level, code, month,
         filed,                                                                  -- 立案数
         round(resolved_on_time::numeric / nullif(resolved, 0), 4)
           AS on_time_handling_rate,                                             -- 按期处置率
         overdue AS overdue_open,                                                -- 超期未处置
         round(closed::numeric / filed, 4) AS closure_rate,                      -- 结案率
         round(closed_on_time::numeric / filed, 4) AS on_time_closure_rate,      -- 按期结案率
         round(reworked::numeric / nullif(resolved, 0), 4) AS rework_rate,       -- 返工率
         round((filed - returned)::numeric / filed, 4) AS accurate_dispatch_rate, -- 准确派遣率
         round(returned::numeric / filed, 4) AS return_rate,                     -- 退回率
         round(satisfied::numeric / nullif(evaluated, 0), 4) AS satisfaction_rate, -- 满意率
         round((handling_seconds / 3600)::numeric, 2) AS mean_handling_hours,    -- 平均处置时长
         round(contacts, 2) AS contacts_per_case
    FROM (
      SELECT 'district' AS level, district_code AS code, month, count(*) AS filed,
             count(first_resolved_at) AS resolved,
             count(*) FILTER (WHERE first_resolved_at <= deadline_when_resolved) AS resolved_on_time,
             count(*) FILTER (WHERE overdue) AS overdue, count(first_closed_at) AS closed,
             count(*) FILTER (WHERE first_closed_at <= deadline_when_closed) AS closed_on_time,
             count(*) FILTER (WHERE reworks > 0) AS reworked,
             count(*) FILTER (WHERE returned) AS returned, count(last_evaluation) AS evaluated,
             count(*) FILTER (WHERE last_evaluation IN ('RESULT_SATISFIED', 'RESULT_ACCEPTABLE')) AS satisfied,
             avg(extract(epoch FROM first_resolved_at - opened_at)) AS handling_seconds,
             avg(contacts) AS contacts
        FROM audit.case_facts GROUP BY district_code, month
      UNION ALL
      SELECT 'street' AS level, street_code, month, count(*), count(first_resolved_at),
             count(*) FILTER (WHERE first_resolved_at <= deadline_when_resolved),
             count(*) FILTER (WHERE overdue), count(first_closed_at),
             count(*) FILTER (WHERE first_closed_at <= deadline_when_closed),
             count(*) FILTER (WHERE reworks > 0),
             count(*) FILTER (WHERE returned), count(last_evaluation),
             count(*) FILTER (WHERE last_evaluation IN ('RESULT_SATISFIED', 'RESULT_ACCEPTABLE')),
             avg(extract(epoch FROM first_resolved_at - opened_at)), avg(contacts)
        FROM audit.case_facts GROUP BY street_code, month
      UNION ALL
      SELECT 'community' AS level, community_code, month, count(*), count(first_resolved_at),
             count(*) FILTER (WHERE first_resolved_at <= deadline_when_resolved),
             count(*) FILTER (WHERE overdue), count(first_closed_at),
             count(*) FILTER (WHERE first_closed_at <= deadline_when_closed),
             count(*) FILTER (WHERE reworks > 0),
             count(*) FILTER (WHERE returned), count(last_evaluation),
             count(*) FILTER (WHERE last_evaluation IN ('RESULT_SATISFIED', 'RESULT_ACCEPTABLE')),
             avg(extract(epoch FROM first_resolved_at - opened_at)), avg(contacts)
        FROM audit.case_facts GROUP BY community_code, month
      UNION ALL
      SELECT 'unit' AS level, unit_code, month, count(*), count(first_resolved_at),
             count(*) FILTER (WHERE first_resolved_at <= deadline_when_resolved),
             count(*) FILTER (WHERE overdue), count(first_closed_at),
             count(*) FILTER (WHERE first_closed_at <= deadline_when_closed),
             count(*) FILTER (WHERE reworks > 0),
             count(*) FILTER (WHERE returned), count(last_evaluation),
             count(*) FILTER (WHERE last_evaluation IN ('RESULT_SATISFIED', 'RESULT_ACCEPTABLE')),
             avg(extract(epoch FROM first_resolved_at - opened_at)), avg(contacts)
        FROM audit.case_facts GROUP BY unit_code, month
    ) k;

CREATE OR REPLACE VIEW audit."考核指标" AS SELECT * FROM audit.kpi;
COMMENT ON VIEW audit.kpi IS '考核指标: 立案数, 按期处置率, 超期未处置, 结案率, 按期结案率, 返工率, 准确派遣率, 退回率, 满意率, 平均处置时长, contacts per case';
GRANT SELECT ON audit.kpi, audit."考核指标" TO onegrid_auditor;
