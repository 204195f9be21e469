-- The inbox's sorts read its indexes in order, so that a page stops after its rows instead of
-- sorting every notification of the user (see core::notifications::OrderField::sql).
--
-- Severity: the inbox lists the most urgent first (`severity DESC, created DESC, id DESC`),
-- which migration 0001's index, ordered by `severity` ascending and then newest first, could
-- give only one severity at a time: a page read and sorted every notification of the user's
-- most urgent severity present (a quarter of a large inbox) to return twenty. A minimum
-- severity is a range of the index either way.
DROP INDEX notifications_user_severity;
CREATE INDEX notifications_user_severity ON notifications (user_ref, severity DESC, created DESC, id DESC);

-- Topic: the index of migration 0001 serves the sort since it orders by the column rather
-- than an expression of it. Origin has no index: one holding the user's notifications by
-- origin cost SQLite's publish 11-18% (docs/performance.md), so a page sorted by origin still
-- sorts the inbox.
