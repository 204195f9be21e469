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
SELECT user_ref, (read IS NOT NULL)::int, (saved IS NOT NULL)::int, (archived IS NOT NULL)::int,
       (snoozed_until IS NOT NULL)::int, severity, COALESCE(topic, ''), COUNT(*)
FROM notifications WHERE user_ref IS NOT NULL
GROUP BY 1, 2, 3, 4, 5, 6, 7;

-- Every transaction that writes notifications takes the event-log lock first
-- (core::db::Db::begin_inbox), so these upserts never wait for each other or deadlock.
CREATE FUNCTION herald_count_notification() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.user_ref IS NOT NULL THEN
        UPDATE inbox_counts SET n = n - 1
        WHERE user_ref = OLD.user_ref AND read = (OLD.read IS NOT NULL)::int AND saved = (OLD.saved IS NOT NULL)::int
          AND archived = (OLD.archived IS NOT NULL)::int AND snoozed = (OLD.snoozed_until IS NOT NULL)::int
          AND severity = OLD.severity AND topic = COALESCE(OLD.topic, '');
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.user_ref IS NOT NULL THEN
        INSERT INTO inbox_counts (user_ref, read, saved, archived, snoozed, severity, topic, n)
        VALUES (NEW.user_ref, (NEW.read IS NOT NULL)::int, (NEW.saved IS NOT NULL)::int,
                (NEW.archived IS NOT NULL)::int, (NEW.snoozed_until IS NOT NULL)::int, NEW.severity,
                COALESCE(NEW.topic, ''), 1)
        ON CONFLICT (user_ref, read, saved, archived, snoozed, severity, topic) DO UPDATE SET n = inbox_counts.n + 1;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER inbox_counts_insert_delete AFTER INSERT OR DELETE ON notifications
FOR EACH ROW EXECUTE FUNCTION herald_count_notification();

CREATE TRIGGER inbox_counts_update AFTER UPDATE OF read, saved, archived, snoozed_until, severity, topic
ON notifications
FOR EACH ROW WHEN (
    (OLD.read IS NULL) <> (NEW.read IS NULL) OR (OLD.saved IS NULL) <> (NEW.saved IS NULL)
    OR (OLD.archived IS NULL) <> (NEW.archived IS NULL) OR (OLD.snoozed_until IS NULL) <> (NEW.snoozed_until IS NULL)
    OR OLD.severity <> NEW.severity OR COALESCE(OLD.topic, '') <> COALESCE(NEW.topic, ''))
EXECUTE FUNCTION herald_count_notification();

-- Due snoozes are counted from the notifications themselves; this finds a user's quickly.
CREATE INDEX notifications_user_snoozed ON notifications (user_ref, snoozed_until) WHERE snoozed_until IS NOT NULL;
