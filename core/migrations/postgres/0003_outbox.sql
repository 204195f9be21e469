-- The outbox: one row per (recipient, channel) a notification is forwarded to, written in the
-- notification's own transaction and worked off by senders holding a lease.
CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,            -- UUIDv7; receivers see it (Message-ID, header)
    channel         TEXT NOT NULL,               -- Email, Slack, Webhook
    kind            TEXT NOT NULL,               -- new, update, digest
    notification_id TEXT NOT NULL,               -- for a digest: the first one it lists
    user_ref        TEXT,                        -- the recipient user, when there is one
    target          TEXT NOT NULL,               -- address, Slack user/channel, webhook
    payload         TEXT NOT NULL,               -- what to send (JSON), fixed at enqueueing
    status          TEXT NOT NULL,               -- pending, digest, merged, delivered, dead
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,             -- for a digest entry: when its period ends
    lease_id        TEXT,                        -- the claim in flight
    lease_until     BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    delivered_at    BIGINT
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status IN ('pending', 'digest');
CREATE INDEX deliveries_listing ON deliveries (status, channel, created_at);

-- The Slack message each delivery target got for a notification, so a scope update edits
-- it (chat.update) instead of posting anew.
CREATE TABLE slack_messages (
    notification_id TEXT NOT NULL,
    target          TEXT NOT NULL,
    channel         TEXT NOT NULL,               -- the conversation Slack posted in
    ts              TEXT NOT NULL,
    PRIMARY KEY (notification_id, target)
);

-- Personal webhooks: where a user's notifications are POSTed, signed with their secret.
CREATE TABLE user_webhooks (
    user_ref   TEXT PRIMARY KEY,
    url        TEXT NOT NULL,
    secret     TEXT NOT NULL,                    -- the HMAC key; it must be kept to sign
    created_at BIGINT NOT NULL
);

ALTER TABLE user_preferences ADD COLUMN email_mode TEXT NOT NULL DEFAULT 'immediate';
