-- Search indexing behind the writes (core::notifications::search). Indexing a transaction's
-- notifications in the trigram index as they are stored cost every transaction a new index
-- segment and merge work: about as much writing as the notifications themselves. New
-- notifications are now indexed afterwards, a few hundred to a transaction, by the instance's
-- indexer (`search::catch_up`); a search first indexes whatever the indexer has not reached,
-- so it sees every notification stored before it began.
--
-- `search_progress.indexed` is the highest rowid up to which every notification is in the
-- index, as its text is now. Rows above it are not in the index; the triggers below keep
-- the index in step for the rows at or below it only. A new row gets a rowid at or below the
-- mark only when rows at the top were deleted and their rowids are used again: it is indexed
-- at once.
--
-- After a `VACUUM`, which may renumber rowids, rebuild the index as migration 0007 says and
-- then run UPDATE search_progress SET indexed = (SELECT COALESCE(MAX(rowid), 0) FROM notifications);
CREATE TABLE search_progress (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    indexed INTEGER NOT NULL
);

INSERT INTO search_progress (id, indexed) SELECT 1, COALESCE(MAX(rowid), 0) FROM notifications;

DROP TRIGGER notifications_search_insert;
DROP TRIGGER notifications_search_delete;
DROP TRIGGER notifications_search_update;

CREATE TRIGGER notifications_search_insert AFTER INSERT ON notifications
WHEN NEW.rowid <= (SELECT indexed FROM search_progress)
BEGIN
    INSERT INTO notifications_search (rowid, title, description) VALUES (NEW.rowid, NEW.title, NEW.description);
END;

CREATE TRIGGER notifications_search_delete AFTER DELETE ON notifications
WHEN OLD.rowid <= (SELECT indexed FROM search_progress)
BEGIN
    INSERT INTO notifications_search (notifications_search, rowid, title, description)
    VALUES ('delete', OLD.rowid, OLD.title, OLD.description);
END;

CREATE TRIGGER notifications_search_update AFTER UPDATE OF title, description ON notifications
WHEN OLD.rowid <= (SELECT indexed FROM search_progress)
BEGIN
    INSERT INTO notifications_search (notifications_search, rowid, title, description)
    VALUES ('delete', OLD.rowid, OLD.title, OLD.description);
    INSERT INTO notifications_search (rowid, title, description) VALUES (NEW.rowid, NEW.title, NEW.description);
END;
