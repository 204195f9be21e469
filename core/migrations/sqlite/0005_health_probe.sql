-- One row the readiness probe rewrites: a write that fails tells that the database cannot
-- store anything now (disk full, read-only, unreachable), which a SELECT alone would not.
CREATE TABLE health_probe (
    id         INTEGER PRIMARY KEY,
    checked_at BIGINT NOT NULL
);
