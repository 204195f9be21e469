-- Snoozing: a snoozed notification leaves the inbox views until `snoozed_until`, then
-- returns unread (core::notifications::wake_snoozed). Broadcasts keep it per user.
ALTER TABLE notifications ADD COLUMN snoozed_until BIGINT;
ALTER TABLE broadcast_status ADD COLUMN snoozed_until BIGINT;
CREATE INDEX notifications_snoozed ON notifications (snoozed_until) WHERE snoozed_until IS NOT NULL;
CREATE INDEX broadcast_status_snoozed ON broadcast_status (snoozed_until) WHERE snoozed_until IS NOT NULL;

-- Personal preferences that are not per channel/origin/topic.
CREATE TABLE user_preferences (
    user_ref          TEXT PRIMARY KEY,
    mark_read_on_open BOOLEAN NOT NULL DEFAULT TRUE,
    updated_at        BIGINT NOT NULL
);
