-- 032: the registry holds only what the pipeline can use and show. `onegridctl registry
-- import` writes whatever these tables' constraints allow, and they allowed:
--   * any positive time limit. One of 2,147,483,647 hours made every case of its category
--     due after the year 9999, which no timestamp holds: archive refused each such
--     decision as malformed, dispatch sent it again for ever, and the report was never
--     answered. A category's limit (og.category) and a severity's (og.severity_limit) now
--     stay within what dispatch's working calendar counts: at most 87,600 hours (ten
--     years, day and night), 16,000 working hours or 2,000 working days (about eight years
--     of working time; the calendar counts ten years of days ahead);
--   * a category code longer than the 64 characters intake takes in an event: no report
--     could name it;
--   * names of any length and any characters: a name of megabytes, or with a terminal's
--     escape sequences, reached the feed, the auditor's views and their terminals. Names
--     (areas, sources, categories and their major and minor classes, handling units) are
--     now 1 to 200 characters without control characters (U+0000 to U+001F, U+007F to
--     U+009F).
-- Changes no row. A registry that holds such a value stops the migration here, naming
-- each (fix them with `onegridctl registry import`, then run migrate again).
SET LOCAL ROLE onegrid_owner;

DO $$
DECLARE
  bad text;
BEGIN
  WITH limits AS (
    SELECT 'category ' || code AS what, time_limit, time_unit FROM og.category
    UNION ALL
    SELECT format('category %s at severity %s', category_code, severity), time_limit, time_unit
      FROM og.severity_limit
  ), names AS (
    SELECT 'area ' || code AS what, name FROM og.area
    UNION ALL SELECT 'source ' || code, name FROM og.source_system
    UNION ALL SELECT 'category ' || code, name FROM og.category
    UNION ALL SELECT 'category ' || code || ' (major)', major FROM og.category
    UNION ALL SELECT 'category ' || code || ' (minor)', minor FROM og.category
    UNION ALL SELECT 'unit ' || code, name FROM og.handling_unit
  ), problems AS (
    SELECT format('%s: time limit %s %s', what, time_limit, time_unit) AS p FROM limits
     WHERE time_limit > CASE time_unit WHEN 'hours' THEN 87600 WHEN 'working_hours' THEN 16000
                                       ELSE 2000 END
    UNION ALL
    SELECT format('category %s: code of %s characters', left(code, 64), length(code))
      FROM og.category WHERE length(code) > 64
    UNION ALL
    SELECT format('%s: name of %s characters%s', left(what, 80), length(name),
                  CASE WHEN name ~ '[\x01-\x1f\x7f-\x9f]' THEN ', with control characters' ELSE '' END)
      FROM names
     WHERE length(name) NOT BETWEEN 1 AND 200 OR name ~ '[\x01-\x1f\x7f-\x9f]'
  )
  SELECT string_agg(p, '; ' ORDER BY p) INTO bad FROM problems;
  IF bad IS NOT NULL THEN
    RAISE EXCEPTION 'the registry holds values onegrid cannot use or show: %', left(bad, 2000)
      USING HINT = 'Time limits: at most 87600 hours, 16000 working hours or 2000 working days; '
                   'category codes: at most 64 characters; names: 1 to 200 characters without '
                   'control characters. Fix them with onegridctl registry import, then run '
                   'migrate again.';
  END IF;
END $$;

-- Written as flat chains of AND (no BETWEEN, which nests one): PostgreSQL keeps an
-- expression as it was parsed, and a restored dump parses the printed text again, flat;
-- audit definitions compares the two.
ALTER TABLE og.category
  ADD CONSTRAINT category_time_limit_bound
    CHECK (time_limit <= CASE time_unit WHEN 'hours' THEN 87600 WHEN 'working_hours' THEN 16000
                                        ELSE 2000 END),
  ADD CONSTRAINT category_code_length CHECK (length(code) <= 64),
  ADD CONSTRAINT category_names
    CHECK (length(name) >= 1 AND length(name) <= 200 AND name !~ '[\x01-\x1f\x7f-\x9f]'
           AND length(major) >= 1 AND length(major) <= 200 AND major !~ '[\x01-\x1f\x7f-\x9f]'
           AND length(minor) >= 1 AND length(minor) <= 200 AND minor !~ '[\x01-\x1f\x7f-\x9f]');
ALTER TABLE og.severity_limit
  ADD CONSTRAINT severity_limit_time_limit_bound
    CHECK (time_limit <= CASE time_unit WHEN 'hours' THEN 87600 WHEN 'working_hours' THEN 16000
                                        ELSE 2000 END);
ALTER TABLE og.area
  ADD CONSTRAINT area_name
    CHECK (length(name) >= 1 AND length(name) <= 200 AND name !~ '[\x01-\x1f\x7f-\x9f]');
ALTER TABLE og.source_system
  ADD CONSTRAINT source_system_name
    CHECK (length(name) >= 1 AND length(name) <= 200 AND name !~ '[\x01-\x1f\x7f-\x9f]');
ALTER TABLE og.handling_unit
  ADD CONSTRAINT handling_unit_name
    CHECK (length(name) >= 1 AND length(name) <= 200 AND name !~ '[\x01-\x1f\x7f-\x9f]');
