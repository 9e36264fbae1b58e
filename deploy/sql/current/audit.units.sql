-- audit.units: the handling units of the registry, for labelling cases and the KPIs' unit
-- rows (audit.cases.unit_code, audit.kpi level 'unit') by name.

CREATE OR REPLACE VIEW audit.units AS
  SELECT u.code, u.name, u.kind, u.area_code, u.district_code,
         (SELECT name FROM og.area WHERE code = u.district_code) AS district_name
    FROM og.handling_unit u;

GRANT SELECT ON audit.units TO onegrid_auditor;
