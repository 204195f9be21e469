-- Directory: users and groups, as imported from catalog files or created on sign-in.
CREATE TABLE users (
    ref           TEXT PRIMARY KEY,              -- user:namespace/name, lowercase
    display_name  TEXT,
    email         TEXT,
    annotations   TEXT NOT NULL DEFAULT '{}',    -- JSON object
    password_hash TEXT,                          -- argon2id PHC string; NULL: no password login
    created_at    BIGINT NOT NULL
);
CREATE INDEX users_email ON users (lower(email));

CREATE TABLE groups (
    ref          TEXT PRIMARY KEY,               -- group:namespace/name, lowercase
    display_name TEXT,
    email        TEXT,
    annotations  TEXT NOT NULL DEFAULT '{}',
    created_at   BIGINT NOT NULL
);

-- Direct membership; nested membership is resolved through group_edges. `source` says which
-- catalog entry declared the row ('user' for memberOf, 'group' for members), so re-importing
-- one entity replaces exactly what it declared.
CREATE TABLE group_members (
    group_ref TEXT NOT NULL,
    user_ref  TEXT NOT NULL,
    source    TEXT NOT NULL,
    PRIMARY KEY (group_ref, user_ref, source)
);
CREATE INDEX group_members_user ON group_members (user_ref);

-- parent → child group relations; `source` is 'parent' (declared by the parent's children)
-- or 'child' (declared by the child's parent).
CREATE TABLE group_edges (
    parent_ref TEXT NOT NULL,
    child_ref  TEXT NOT NULL,
    source     TEXT NOT NULL,
    PRIMARY KEY (parent_ref, child_ref, source)
);
CREATE INDEX group_edges_child ON group_edges (child_ref);

-- Sign-in sessions; the cookie carries a random secret, only its SHA-256 is stored.
CREATE TABLE sessions (
    id_hash    TEXT PRIMARY KEY,
    user_ref   TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);

-- Bearer tokens: service tokens publish (their name is the origin), personal tokens act as a user.
CREATE TABLE tokens (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('service', 'personal')),
    name         TEXT NOT NULL,
    user_ref     TEXT,
    secret_hash  TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);

-- Notifications: one row per recipient user, or one row for a broadcast (user_ref NULL).
CREATE TABLE notifications (
    id          TEXT PRIMARY KEY,
    user_ref    TEXT,
    origin      TEXT NOT NULL,
    created     BIGINT NOT NULL,
    updated     BIGINT,
    read        BIGINT,                          -- per-user state; broadcasts use broadcast_status
    saved       BIGINT,
    archived    BIGINT,
    title       TEXT NOT NULL,
    description TEXT,
    link        TEXT,
    severity    SMALLINT NOT NULL,               -- 1 low .. 4 critical
    topic       TEXT,
    scope       TEXT,
    icon        TEXT,
    metadata    TEXT
);
-- The inbox: a user's newest first, with the id as tie-breaker.
CREATE INDEX notifications_user_created ON notifications (user_ref, created DESC, id DESC);
CREATE INDEX notifications_user_unread ON notifications (user_ref, read, created DESC, id DESC);
CREATE INDEX notifications_user_severity ON notifications (user_ref, severity, created DESC, id DESC);
CREATE INDEX notifications_user_topic ON notifications (user_ref, topic, created DESC, id DESC);
CREATE INDEX notifications_broadcast_created ON notifications (created DESC, id DESC) WHERE user_ref IS NULL;
-- Scope upserts look up (user, origin, scope).
CREATE INDEX notifications_scope ON notifications (origin, scope, user_ref) WHERE scope IS NOT NULL;
CREATE INDEX notifications_created ON notifications (created);

-- Each user's read/saved/archived state of a broadcast, created on first interaction.
CREATE TABLE broadcast_status (
    notification_id TEXT NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    user_ref        TEXT NOT NULL,
    read            BIGINT,
    saved           BIGINT,
    archived        BIGINT,
    PRIMARY KEY (notification_id, user_ref)
);
CREATE INDEX broadcast_status_user ON broadcast_status (user_ref);

-- Settings: channel → origin → topic ('' for the origin as a whole).
CREATE TABLE user_settings (
    user_ref TEXT NOT NULL,
    channel  TEXT NOT NULL,
    origin   TEXT NOT NULL,
    topic    TEXT NOT NULL DEFAULT '',
    enabled  BOOLEAN NOT NULL,
    PRIMARY KEY (user_ref, channel, origin, topic)
);

-- Idempotency keys of publish requests, kept 24 hours.
CREATE TABLE idempotency_keys (
    token_id     TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       INTEGER NOT NULL,
    response     TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (token_id, key)
);

-- The event log every live stream replays from: strictly increasing ids.
CREATE TABLE events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_ref   TEXT,                             -- NULL: a broadcast, for every user
    kind       TEXT NOT NULL,
    payload    TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX events_created ON events (created_at);
