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

INSERT INTO broadcast_counts (severity, topic, n)
SELECT severity, COALESCE(topic, ''), COUNT(*) FROM notifications WHERE user_ref IS NULL GROUP BY 1, 2;

CREATE TRIGGER broadcast_counts_insert AFTER INSERT ON notifications WHEN NEW.user_ref IS NULL
BEGIN
    INSERT INTO broadcast_counts (severity, topic, n) VALUES (NEW.severity, COALESCE(NEW.topic, ''), 1)
    ON CONFLICT (severity, topic) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER broadcast_counts_delete AFTER DELETE ON notifications WHEN OLD.user_ref IS NULL
BEGIN
    UPDATE broadcast_counts SET n = n - 1 WHERE severity = OLD.severity AND topic = COALESCE(OLD.topic, '');
END;

-- A broadcast stays a broadcast; a scope update may change its severity and topic.
CREATE TRIGGER broadcast_counts_update AFTER UPDATE OF severity, topic ON notifications
WHEN NEW.user_ref IS NULL AND (OLD.severity <> NEW.severity OR COALESCE(OLD.topic, '') <> COALESCE(NEW.topic, ''))
BEGIN
    UPDATE broadcast_counts SET n = n - 1 WHERE severity = OLD.severity AND topic = COALESCE(OLD.topic, '');
    INSERT INTO broadcast_counts (severity, topic, n) VALUES (NEW.severity, COALESCE(NEW.topic, ''), 1)
    ON CONFLICT (severity, topic) DO UPDATE SET n = n + 1;
END;
