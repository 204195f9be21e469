-- Why a scheduled announcement could not be published, when what was stored no longer passes
-- the checks it met when it was saved (a link the configured base URL no longer allows, say).
-- Its state is then `failed`, which stops the scheduler from trying it again every minute;
-- the administrator sees the reason, edits it and schedules or publishes it again, which
-- clears the reason.
ALTER TABLE announcements ADD COLUMN failure TEXT;
