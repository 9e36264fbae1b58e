-- 031: the end of an extension request (its lapse, or extension_ended) is told to the
-- units the feed told of the request, read from their extension_requested rows
-- (og.extension_asked, called by og.feed_case_change), no longer to the supervisors
-- registered when it ends. This index finds a case's requests among all of og.assignment's
-- rows: few, one row per unit asked per request. Changes no row.
SET LOCAL ROLE onegrid_owner;

CREATE INDEX assignment_extension_requested ON og.assignment (case_id, ledger_id)
  WHERE kind = 'extension_requested';
