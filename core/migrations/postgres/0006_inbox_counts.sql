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

-- Changes not yet folded into inbox_counts. Concurrent transactions would wait for each
-- other on a busy user's count rows, and could deadlock when they meet them in different
-- orders; appending here takes no row locks. Readers add these to inbox_counts, and
-- core::notifications::counts::fold moves them over every few seconds.
CREATE TABLE inbox_count_deltas (
    id       BIGSERIAL PRIMARY KEY,
    user_ref TEXT NOT NULL,
    read     SMALLINT NOT NULL,
    saved    SMALLINT NOT NULL,
    archived SMALLINT NOT NULL,
    snoozed  SMALLINT NOT NULL,
    severity SMALLINT NOT NULL,
    topic    TEXT NOT NULL,
    n        BIGINT NOT NULL
);
CREATE INDEX inbox_count_deltas_user ON inbox_count_deltas (user_ref);

INSERT INTO inbox_counts (user_ref, read, saved, archived, snoozed, severity, topic, n)
SELECT user_ref, (read IS NOT NULL)::int, (saved IS NOT NULL)::int, (archived IS NOT NULL)::int,
       (snoozed_until IS NOT NULL)::int, severity, COALESCE(topic, ''), COUNT(*)
FROM notifications WHERE user_ref IS NOT NULL
GROUP BY 1, 2, 3, 4, 5, 6, 7;

CREATE FUNCTION herald_count_notification() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.user_ref IS NOT NULL THEN
        INSERT INTO inbox_count_deltas (user_ref, read, saved, archived, snoozed, severity, topic, n)
        VALUES (OLD.user_ref, (OLD.read IS NOT NULL)::int, (OLD.saved IS NOT NULL)::int,
                (OLD.archived IS NOT NULL)::int, (OLD.snoozed_until IS NOT NULL)::int, OLD.severity,
                COALESCE(OLD.topic, ''), -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.user_ref IS NOT NULL THEN
        INSERT INTO inbox_count_deltas (user_ref, read, saved, archived, snoozed, severity, topic, n)
        VALUES (NEW.user_ref, (NEW.read IS NOT NULL)::int, (NEW.saved IS NOT NULL)::int,
                (NEW.archived IS NOT NULL)::int, (NEW.snoozed_until IS NOT NULL)::int, NEW.severity,
                COALESCE(NEW.topic, ''), 1);
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
