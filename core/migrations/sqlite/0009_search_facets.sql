-- Search's count: the columns an inbox filter reads, for every personal notification, in a
-- narrow table keyed by the notification's rowid (the key the search index returns).
-- Counting a search's matches looks each match up here instead of in `notifications`, whose
-- wide rows spread the same matches over about four times as many pages
-- (core::notifications::search). Triggers keep it exact; broadcasts are counted from
-- `notifications` and `broadcast_status` as before.
--
-- Like the search index it follows rowids, which `.backup` and copies of the file keep;
-- `VACUUM` may renumber them, after which rebuild both (see migration 0007) and run
-- DELETE FROM notification_facets; INSERT INTO notification_facets SELECT rowid, user_ref,
-- created, severity, topic, read, saved, archived, snoozed_until FROM notifications
-- WHERE user_ref IS NOT NULL;
CREATE TABLE notification_facets (
    notification  INTEGER PRIMARY KEY,           -- notifications.rowid
    user_ref      TEXT NOT NULL,
    created       BIGINT NOT NULL,
    severity      SMALLINT NOT NULL,
    topic         TEXT,
    read          BIGINT,
    saved         BIGINT,
    archived      BIGINT,
    snoozed_until BIGINT
);

INSERT INTO notification_facets (notification, user_ref, created, severity, topic, read, saved, archived, snoozed_until)
SELECT rowid, user_ref, created, severity, topic, read, saved, archived, snoozed_until
FROM notifications WHERE user_ref IS NOT NULL;

CREATE TRIGGER notification_facets_insert AFTER INSERT ON notifications WHEN NEW.user_ref IS NOT NULL
BEGIN
    INSERT INTO notification_facets (notification, user_ref, created, severity, topic, read, saved, archived, snoozed_until)
    VALUES (NEW.rowid, NEW.user_ref, NEW.created, NEW.severity, NEW.topic, NEW.read, NEW.saved, NEW.archived,
            NEW.snoozed_until);
END;

CREATE TRIGGER notification_facets_delete AFTER DELETE ON notifications WHEN OLD.user_ref IS NOT NULL
BEGIN
    DELETE FROM notification_facets WHERE notification = OLD.rowid;
END;

-- A user's notification never changes hands and keeps its creation time.
CREATE TRIGGER notification_facets_update AFTER UPDATE OF severity, topic, read, saved, archived, snoozed_until
ON notifications WHEN NEW.user_ref IS NOT NULL
BEGIN
    UPDATE notification_facets
    SET severity = NEW.severity, topic = NEW.topic, read = NEW.read, saved = NEW.saved, archived = NEW.archived,
        snoozed_until = NEW.snoozed_until
    WHERE notification = NEW.rowid;
END;
