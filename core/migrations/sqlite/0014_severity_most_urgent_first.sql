-- An inbox sorted by severity lists the most urgent first (`severity DESC, created DESC,
-- id DESC`, the inbox's "Severity" sort), which migration 0001's index, ordered by
-- `severity` ascending and then newest first, could give only one severity at a time: the
-- page read and sorted every notification of the user's most urgent severity present (a
-- quarter of a large inbox) to return twenty. Ordered as the page is, the index is read in
-- order and the page stops after twenty rows; a minimum severity is a range of it either way.
DROP INDEX notifications_user_severity;
CREATE INDEX notifications_user_severity ON notifications (user_ref, severity DESC, created DESC, id DESC);
