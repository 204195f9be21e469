-- Owners beyond the numbers (core::notifications::search). A search key holds its owner's
-- number in 22 bits (migration 0011), so at most 4,194,303 recipients could be numbered, and
-- the next one failed every transaction of the indexer: from then on every search failed,
-- for everyone, and so did every publish whose row lands at or below the indexer's mark.
-- Recipients are any user refs publishers name, whether or not the directory knows them, so
-- one publisher naming a new ref per notification reached that in minutes.
--
-- Now the last number, 4,194,303, is nobody's: it is the range shared by every recipient
-- that comes after the other numbers ran out, whose keys are
--
--     4194303 << 41 | archived << 40 | notification rowid
--
-- A search for such a user reads the shared range and keeps the user's own rows, which it
-- does anyway for its page; its count looks each match up instead of counting the range
-- (`search::counted`). Recipients with a number keep their own range and index-only counts.
--
-- A recipient numbered 4,194,303 before this migration already has its keys in that range:
-- dropping its number leaves every key where it is.
DELETE FROM search_owners WHERE number = 4194303;

DROP TRIGGER notifications_search_insert;
DROP TRIGGER notifications_search_delete;
DROP TRIGGER notifications_search_update;

-- As in migration 0011, the triggers keep the index in step for the rows at or below the
-- indexer's mark only; the indexer adds the rest. A key's owner part: 0 for a broadcast, the
-- recipient's number, or the shared range when the recipient has none.
CREATE TRIGGER notifications_search_insert AFTER INSERT ON notifications
WHEN NEW.rowid <= (SELECT indexed FROM search_progress)
BEGIN
    INSERT INTO search_owners (user_ref) SELECT NEW.user_ref
    WHERE NEW.user_ref IS NOT NULL AND NOT EXISTS (SELECT 1 FROM search_owners WHERE user_ref = NEW.user_ref)
        AND (SELECT COALESCE(MAX(number), 0) FROM search_owners) < 4194302;
    INSERT INTO notifications_search (rowid, title, description)
    VALUES ((CASE WHEN NEW.user_ref IS NULL THEN 0
                  ELSE COALESCE((SELECT number FROM search_owners WHERE user_ref = NEW.user_ref), 4194303) END << 41)
                + ((NEW.archived IS NOT NULL AND NEW.user_ref IS NOT NULL) << 40) + NEW.rowid,
            NEW.title, NEW.description);
END;

CREATE TRIGGER notifications_search_delete AFTER DELETE ON notifications
WHEN OLD.rowid <= (SELECT indexed FROM search_progress)
BEGIN
    INSERT INTO notifications_search (notifications_search, rowid, title, description)
    VALUES ('delete',
            (CASE WHEN OLD.user_ref IS NULL THEN 0
                  ELSE COALESCE((SELECT number FROM search_owners WHERE user_ref = OLD.user_ref), 4194303) END << 41)
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
            (CASE WHEN OLD.user_ref IS NULL THEN 0
                  ELSE COALESCE((SELECT number FROM search_owners WHERE user_ref = OLD.user_ref), 4194303) END << 41)
                + ((OLD.archived IS NOT NULL AND OLD.user_ref IS NOT NULL) << 40) + OLD.rowid,
            OLD.title, OLD.description);
    INSERT INTO notifications_search (rowid, title, description)
    VALUES ((CASE WHEN NEW.user_ref IS NULL THEN 0
                  ELSE COALESCE((SELECT number FROM search_owners WHERE user_ref = NEW.user_ref), 4194303) END << 41)
                + ((NEW.archived IS NOT NULL AND NEW.user_ref IS NOT NULL) << 40) + NEW.rowid,
            NEW.title, NEW.description);
END;
