-- How many personal notifications each user holds, per state and kind: the inbox's counts
-- (totalCount, status, the topic list) are sums over a few of these rows instead of a scan
-- over every notification (core::notifications::counts). Triggers keep them exact through
-- every write; broadcasts are few and are counted directly.
--
-- The state columns are 1 when the notification's timestamp is set; `snoozed` is 1 while
-- `snoozed_until` is set, due or not (readers correct for due snoozes); `topic` is '' for
-- none.
CREATE TABLE inbox_counts (
    user_ref TEXT NOT NULL,
    read     SMALLINT NOT NULL,
    saved    SMALLINT NOT NULL,
    archived SMALLINT NOT NULL,
    snoozed  SMALLINT NOT NULL,
    severity SMALLINT NOT NULL,
    topic    TEXT NOT NULL,
    n        BIGINT NOT NULL,
    PRIMARY KEY (user_ref, read, saved, archived, snoozed, severity, topic)
);

INSERT INTO inbox_counts (user_ref, read, saved, archived, snoozed, severity, topic, n)
SELECT user_ref, read IS NOT NULL, saved IS NOT NULL, archived IS NOT NULL, snoozed_until IS NOT NULL,
       severity, COALESCE(topic, ''), COUNT(*)
FROM notifications WHERE user_ref IS NOT NULL
GROUP BY 1, 2, 3, 4, 5, 6, 7;

CREATE TRIGGER inbox_counts_insert AFTER INSERT ON notifications WHEN NEW.user_ref IS NOT NULL
BEGIN
    INSERT INTO inbox_counts (user_ref, read, saved, archived, snoozed, severity, topic, n)
    VALUES (NEW.user_ref, NEW.read IS NOT NULL, NEW.saved IS NOT NULL, NEW.archived IS NOT NULL,
            NEW.snoozed_until IS NOT NULL, NEW.severity, COALESCE(NEW.topic, ''), 1)
    ON CONFLICT (user_ref, read, saved, archived, snoozed, severity, topic) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER inbox_counts_delete AFTER DELETE ON notifications WHEN OLD.user_ref IS NOT NULL
BEGIN
    UPDATE inbox_counts SET n = n - 1
    WHERE user_ref = OLD.user_ref AND read = (OLD.read IS NOT NULL) AND saved = (OLD.saved IS NOT NULL)
      AND archived = (OLD.archived IS NOT NULL) AND snoozed = (OLD.snoozed_until IS NOT NULL)
      AND severity = OLD.severity AND topic = COALESCE(OLD.topic, '');
END;

-- A user's notification never changes hands, so only its state and kind can move it.
CREATE TRIGGER inbox_counts_update AFTER UPDATE OF read, saved, archived, snoozed_until, severity, topic
ON notifications
WHEN NEW.user_ref IS NOT NULL AND (
    (OLD.read IS NULL) <> (NEW.read IS NULL) OR (OLD.saved IS NULL) <> (NEW.saved IS NULL)
    OR (OLD.archived IS NULL) <> (NEW.archived IS NULL) OR (OLD.snoozed_until IS NULL) <> (NEW.snoozed_until IS NULL)
    OR OLD.severity <> NEW.severity OR COALESCE(OLD.topic, '') <> COALESCE(NEW.topic, ''))
BEGIN
    UPDATE inbox_counts SET n = n - 1
    WHERE user_ref = OLD.user_ref AND read = (OLD.read IS NOT NULL) AND saved = (OLD.saved IS NOT NULL)
      AND archived = (OLD.archived IS NOT NULL) AND snoozed = (OLD.snoozed_until IS NOT NULL)
      AND severity = OLD.severity AND topic = COALESCE(OLD.topic, '');
    INSERT INTO inbox_counts (user_ref, read, saved, archived, snoozed, severity, topic, n)
    VALUES (NEW.user_ref, NEW.read IS NOT NULL, NEW.saved IS NOT NULL, NEW.archived IS NOT NULL,
            NEW.snoozed_until IS NOT NULL, NEW.severity, COALESCE(NEW.topic, ''), 1)
    ON CONFLICT (user_ref, read, saved, archived, snoozed, severity, topic) DO UPDATE SET n = n + 1;
END;

-- Due snoozes are counted from the notifications themselves; this finds a user's quickly.
CREATE INDEX notifications_user_snoozed ON notifications (user_ref, snoozed_until) WHERE snoozed_until IS NOT NULL;
