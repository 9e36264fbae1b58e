-- 031: the end of an extension request (its lapse, or extension_ended) is told to the
-- units the feed told of the request, read from their extension_requested rows
-- (og.extension_asked, called by og.feed_case_change), no longer to the supervisors
-- registered when it ends. This index finds a case's extension rows among all of
-- og.assignment's: few, one row per unit asked, per request and per end. Changes no row.
SET LOCAL ROLE onegrid_owner;

CREATE INDEX assignment_extension ON og.assignment (case_id, seq)
  WHERE kind IN ('extension_requested', 'extension_lapsed', 'extension_ended');
