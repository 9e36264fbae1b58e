-- audit.areas: the unified hierarchy, with each area's district name.

CREATE OR REPLACE VIEW audit.areas AS
  SELECT a.code, a.level, a.name, a.parent_code, a.district_code,
         (SELECT name FROM og.area WHERE code = a.district_code) AS district_name
    FROM og.area a;

GRANT SELECT ON audit.areas TO onegrid_auditor;
