-- Search keyed by owner (core::notifications::search). The trigram index returned every
-- user's matches together, so a search counted its matches by looking each one up to learn
-- whose it was and in what state: 10,000 lookups for a common word in a large inbox, most of
-- a search's time. The index is now keyed so that one owner's matches are one range of keys,
-- which FTS5 reads on its own, and a count of them is a walk of the index's match list:
--
--     key = owner << 41 | archived << 40 | notification rowid
--
-- `owner` is the recipient's number in `search_owners` (0 for broadcasts), `archived` is 1
-- while a personal notification is archived (the inbox hides those, so a count splits on
-- it; broadcasts' archiving is each user's, in `broadcast_status`, and stays 0), and the
-- rowid keeps 40 bits (a trillion notifications). Owners number up to 2^22 − 1, so that a
-- key stays a positive 64-bit integer.
--
-- The keys are not the notifications' rowids, so the index no longer reads its text from
-- `notifications` (`content = ''`: it keeps the trigrams, not the text; the triggers hand it
-- the old text to delete, and `'rebuild'` no longer applies). After a `VACUUM`, which may
-- renumber rowids, empty it and let the indexer add everything again, as
-- docs/operating.md says.
--
-- Archiving or restoring a notification already indexed now rewrites its entry (a delete
-- and an insert in the index, in the writer's transaction). This migration indexes again
-- every notification the old index held, in its own transaction at start-up: about 30 s
-- per million notifications on a 2-core machine (121,000 took 3.6 s, timed by hand).
CREATE TABLE search_owners (
    number   INTEGER PRIMARY KEY CHECK (number BETWEEN 1 AND 4194303),
    user_ref TEXT NOT NULL UNIQUE
);

INSERT INTO search_owners (user_ref)
SELECT DISTINCT user_ref FROM notifications WHERE user_ref IS NOT NULL ORDER BY user_ref;

DROP TRIGGER notifications_search_insert;
DROP TRIGGER notifications_search_delete;
DROP TRIGGER notifications_search_update;
DROP TABLE notifications_search;

CREATE VIRTUAL TABLE notifications_search USING fts5 (
    title, description, content = '', tokenize = 'trigram'
);

INSERT INTO notifications_search (rowid, title, description)
SELECT (COALESCE(o.number, 0) << 41) + ((n.archived IS NOT NULL AND n.user_ref IS NOT NULL) << 40) + n.rowid,
       n.title, n.description
FROM notifications n LEFT JOIN search_owners o ON o.user_ref = n.user_ref
WHERE n.rowid <= (SELECT indexed FROM search_progress);

-- As in migration 0010, the triggers keep the index in step for the rows at or below the
-- indexer's mark only; the indexer adds the rest.
CREATE TRIGGER notifications_search_insert AFTER INSERT ON notifications
WHEN NEW.rowid <= (SELECT indexed FROM search_progress)
BEGIN
    -- Not `OR IGNORE`, which would also ignore the CHECK and file the row under broadcasts.
    INSERT INTO search_owners (user_ref) SELECT NEW.user_ref
    WHERE NEW.user_ref IS NOT NULL AND NOT EXISTS (SELECT 1 FROM search_owners WHERE user_ref = NEW.user_ref);
    INSERT INTO notifications_search (rowid, title, description)
    VALUES ((COALESCE((SELECT number FROM search_owners WHERE user_ref = NEW.user_ref), 0) << 41)
                + ((NEW.archived IS NOT NULL AND NEW.user_ref IS NOT NULL) << 40) + NEW.rowid,
            NEW.title, NEW.description);
END;

CREATE TRIGGER notifications_search_delete AFTER DELETE ON notifications
WHEN OLD.rowid <= (SELECT indexed FROM search_progress)
BEGIN
    INSERT INTO notifications_search (notifications_search, rowid, title, description)
    VALUES ('delete',
            (COALESCE((SELECT number FROM search_owners WHERE user_ref = OLD.user_ref), 0) << 41)
                + ((OLD.archived IS NOT NULL AND OLD.user_ref IS NOT NULL) << 40) + OLD.rowid,
            OLD.title, OLD.description);
END;

-- A notification never changes hands; archiving or restoring one moves its key.
CREATE TRIGGER notifications_search_update AFTER UPDATE OF title, description, archived ON notifications
WHEN OLD.rowid <= (SELECT indexed FROM search_progress)
    AND (OLD.title IS NOT NEW.title OR OLD.description IS NOT NEW.description
         OR (OLD.archived IS NULL) <> (NEW.archived IS NULL))
BEGIN
    INSERT INTO notifications_search (notifications_search, rowid, title, description)
    VALUES ('delete',
            (COALESCE((SELECT number FROM search_owners WHERE user_ref = OLD.user_ref), 0) << 41)
                + ((OLD.archived IS NOT NULL AND OLD.user_ref IS NOT NULL) << 40) + OLD.rowid,
            OLD.title, OLD.description);
    INSERT INTO notifications_search (rowid, title, description)
    VALUES ((COALESCE((SELECT number FROM search_owners WHERE user_ref = NEW.user_ref), 0) << 41)
                + ((NEW.archived IS NOT NULL AND NEW.user_ref IS NOT NULL) << 40) + NEW.rowid,
            NEW.title, NEW.description);
END;
