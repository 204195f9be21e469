-- Search: a trigram index over the titles and descriptions of notifications, so that
-- `search=` finds its matches through the index instead of reading every row of the inbox
-- (core::notifications::search). A trigram phrase matches exactly the rows whose title or
-- description holds the text, whatever its case; texts shorter than three characters have
-- no trigram and are still matched by a scan.
--
-- The index holds no copy of the text (`content=`): it points at notifications' rowids,
-- which `.backup` and copies of the file keep. `VACUUM` may renumber them; after one, run
-- INSERT INTO notifications_search (notifications_search) VALUES ('rebuild');
CREATE VIRTUAL TABLE notifications_search USING fts5 (
    title, description, content = 'notifications', tokenize = 'trigram'
);

INSERT INTO notifications_search (notifications_search) VALUES ('rebuild');

CREATE TRIGGER notifications_search_insert AFTER INSERT ON notifications
BEGIN
    INSERT INTO notifications_search (rowid, title, description) VALUES (NEW.rowid, NEW.title, NEW.description);
END;

CREATE TRIGGER notifications_search_delete AFTER DELETE ON notifications
BEGIN
    INSERT INTO notifications_search (notifications_search, rowid, title, description)
    VALUES ('delete', OLD.rowid, OLD.title, OLD.description);
END;

CREATE TRIGGER notifications_search_update AFTER UPDATE OF title, description ON notifications
BEGIN
    INSERT INTO notifications_search (notifications_search, rowid, title, description)
    VALUES ('delete', OLD.rowid, OLD.title, OLD.description);
    INSERT INTO notifications_search (rowid, title, description) VALUES (NEW.rowid, NEW.title, NEW.description);
END;
