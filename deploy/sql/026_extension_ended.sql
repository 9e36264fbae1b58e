-- 026: the supervising units that were told of an extension request (extension_requested)
-- are told when it stops waiting for them other than by a lapse (extension_lapsed): one of
-- them approved or refused it, or the holding unit's own next step ended it. Before, only a
-- lapse was told: a unit's work list kept a request someone else had decided, and its
-- approval, sent later, was taken for a direct grant of more days (og.feed_case_change).
SET LOCAL ROLE onegrid_owner;

ALTER TABLE og.assignment DROP CONSTRAINT assignment_kind_check;
ALTER TABLE og.assignment ADD CONSTRAINT assignment_kind_check CHECK (kind IN (
  'assigned', 'withdrawn', 'supervise', 'finished', 'reopened', 'deadline_changed',
  'supervision_ended', 'extension_requested', 'extension_lapsed', 'extension_ended'));
