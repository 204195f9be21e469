-- How many broadcasts there are, by severity and topic ('' for none). A user's count of
-- broadcasts is a sum over these rows corrected by the user's own state of the few broadcasts
-- they touched (`broadcast_status`), instead of a scan over every broadcast
-- (core::notifications::counts). Triggers keep the rows exact through every write.
CREATE TABLE broadcast_counts (
    severity SMALLINT NOT NULL,
    topic    TEXT NOT NULL,
    n        BIGINT NOT NULL,
    PRIMARY KEY (severity, topic)
);

-- No instance still running the previous version may write a notification between the
-- counting below and the triggers' creation (the migration is one transaction).
LOCK TABLE notifications IN SHARE ROW EXCLUSIVE MODE;

INSERT INTO broadcast_counts (severity, topic, n)
SELECT severity, COALESCE(topic, ''), COUNT(*) FROM notifications WHERE user_ref IS NULL GROUP BY 1, 2;

-- Every transaction that writes notifications takes the event-log lock first
-- (core::db::Db::begin_inbox), so these upserts never wait for each other or deadlock.
CREATE FUNCTION herald_count_broadcast() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.user_ref IS NULL THEN
        UPDATE broadcast_counts SET n = n - 1 WHERE severity = OLD.severity AND topic = COALESCE(OLD.topic, '');
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.user_ref IS NULL THEN
        INSERT INTO broadcast_counts (severity, topic, n) VALUES (NEW.severity, COALESCE(NEW.topic, ''), 1)
        ON CONFLICT (severity, topic) DO UPDATE SET n = broadcast_counts.n + 1;
    END IF;
    RETURN NULL;
END
$$;

-- Each trigger fires for broadcasts only: personal notifications, the many, pay nothing.
CREATE TRIGGER broadcast_counts_insert AFTER INSERT ON notifications
FOR EACH ROW WHEN (NEW.user_ref IS NULL) EXECUTE FUNCTION herald_count_broadcast();

CREATE TRIGGER broadcast_counts_delete AFTER DELETE ON notifications
FOR EACH ROW WHEN (OLD.user_ref IS NULL) EXECUTE FUNCTION herald_count_broadcast();

-- A broadcast stays a broadcast; a scope update may change its severity and topic.
CREATE TRIGGER broadcast_counts_update AFTER UPDATE OF severity, topic ON notifications
FOR EACH ROW WHEN (NEW.user_ref IS NULL AND (OLD.severity <> NEW.severity OR COALESCE(OLD.topic, '') <> COALESCE(NEW.topic, '')))
EXECUTE FUNCTION herald_count_broadcast();
