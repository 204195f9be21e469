-- Search: trigram indexes over the lower-cased titles and descriptions of notifications, so
-- that `search=` (a LIKE '%text%' on each) finds its matches through the indexes instead of
-- reading every row of the inbox (core::notifications::search). pg_trgm ships with
-- PostgreSQL's contrib modules and is a trusted extension: the database's owner may create
-- it. Texts shorter than three characters have no trigram and are still matched by a scan.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE INDEX notifications_title_trgm ON notifications USING gin (LOWER(title) gin_trgm_ops);
CREATE INDEX notifications_description_trgm ON notifications USING gin (LOWER(COALESCE(description, '')) gin_trgm_ops);
