-- Announcements administrators compose: published as ordinary notifications from the origin
-- `herald:announcements` with the scope `announcement:<id>`, so an edit is a scope update.
CREATE TABLE announcements (
    id           TEXT PRIMARY KEY,
    title        TEXT NOT NULL,
    body         TEXT,                           -- markdown
    link         TEXT,
    severity     SMALLINT NOT NULL,
    topic        TEXT,
    icon         TEXT,
    everyone     BOOLEAN NOT NULL,
    audience     TEXT NOT NULL DEFAULT '[]',     -- JSON list of user and group refs
    excluded     TEXT NOT NULL DEFAULT '[]',
    forward      BOOLEAN NOT NULL DEFAULT TRUE,  -- also email, Slack and webhooks (per settings)
    state        TEXT NOT NULL,                  -- draft, scheduled, published, expired, withdrawn
    publish_at   BIGINT,
    expires_at   BIGINT,
    created_by   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    published_at BIGINT
);
CREATE INDEX announcements_created ON announcements (created_at);
