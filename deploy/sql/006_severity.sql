-- 006: a hazard's CAP severity (SensorAlert.severity, NewReport.severity) can set its time
-- limit: where the catalogue lists a limit for the category at that severity, it applies
-- instead of the category's own. Severity numbers are those of onegrid.v1.SensorAlert:
-- 1 extreme, 2 severe, 3 moderate, 4 minor.

SET LOCAL ROLE onegrid_owner;

CREATE TABLE og.severity_limit (
  category_code text NOT NULL REFERENCES og.category (code),
  severity      integer NOT NULL CHECK (severity BETWEEN 1 AND 4),
  time_limit    integer NOT NULL CHECK (time_limit > 0),
  time_unit     text NOT NULL CHECK (time_unit IN ('working_hours', 'working_days', 'hours')),
  PRIMARY KEY (category_code, severity)
);
GRANT SELECT ON og.severity_limit TO onegrid_reader;
