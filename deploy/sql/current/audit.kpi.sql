-- audit.kpi (考核指标): the KPIs per month of filing (Asia/Shanghai) and per district,
-- street, community and handling unit, from audit.case_facts. Rates are NULL where their
-- denominator is 0.

CREATE OR REPLACE VIEW audit.kpi AS
  SELECT CASE WHEN GROUPING(district_code) = 0 THEN 'district'
              WHEN GROUPING(street_code) = 0 THEN 'street'
              WHEN GROUPING(community_code) = 0 THEN 'community'
              ELSE 'unit' END AS level,
         coalesce(district_code, street_code, community_code, unit_code) AS code,
         month,
         count(*) AS filed,                                                      -- 立案数
         round(count(*) FILTER (WHERE first_resolved_at <= deadline_when_resolved)::numeric
               / nullif(count(first_resolved_at), 0), 4) AS on_time_handling_rate, -- 按期处置率
         count(*) FILTER (WHERE open AND deadline_at < now()) AS overdue_open,   -- 超期未处置
         round(count(first_closed_at)::numeric / count(*), 4) AS closure_rate,   -- 结案率
         round(count(*) FILTER (WHERE first_closed_at <= deadline_when_closed)::numeric
               / count(*), 4) AS on_time_closure_rate,                           -- 按期结案率
         round(count(*) FILTER (WHERE reworks > 0)::numeric
               / nullif(count(first_resolved_at), 0), 4) AS rework_rate,         -- 返工率
         round(count(*) FILTER (WHERE NOT returned)::numeric / count(*), 4)
           AS accurate_dispatch_rate,                                            -- 准确派遣率
         round(count(*) FILTER (WHERE returned)::numeric / count(*), 4) AS return_rate, -- 退回率
         round(count(*) FILTER (WHERE last_evaluation IN ('RESULT_SATISFIED', 'RESULT_ACCEPTABLE'))::numeric
               / nullif(count(last_evaluation), 0), 4) AS satisfaction_rate,     -- 满意率
         round((avg(extract(epoch FROM first_resolved_at - opened_at)) / 3600)::numeric, 2)
           AS mean_handling_hours,                                               -- 平均处置时长
         round(avg(contacts), 2) AS contacts_per_case
    FROM (SELECT *, to_char(opened_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM') AS month
            FROM audit.case_facts) f
   GROUP BY GROUPING SETS ((district_code, month), (street_code, month),
                           (community_code, month), (unit_code, month));

CREATE OR REPLACE VIEW audit."考核指标" AS SELECT * FROM audit.kpi;
COMMENT ON VIEW audit.kpi IS '考核指标: 立案数, 按期处置率, 超期未处置, 结案率, 按期结案率, 返工率, 准确派遣率, 退回率, 满意率, 平均处置时长, contacts per case';
GRANT SELECT ON audit.kpi, audit."考核指标" TO onegrid_auditor;
