-- audit.categories: the categories of the registry, with their time limits, for labelling
-- cases and KPIs (audit.cases.category_code) by name.

CREATE OR REPLACE VIEW audit.categories AS
  SELECT code, name, major, minor, kind, unit_level, time_limit, time_unit, check_required
    FROM og.category;

GRANT SELECT ON audit.categories TO onegrid_auditor;
