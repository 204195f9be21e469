-- Search keyed by user: the trigram indexes of migration 0007 held every notification's
-- trigrams in one list per trigram, so a user's search read the matches of every user and
-- rechecked each against its row to keep the user's own. In a directory of a thousand users
-- that is a thousand inboxes' matches per search. Each personal notification's trigrams now
-- come with its recipient (btree_gin indexes the text column beside the trigrams, and a
-- search intersects the two lists inside the index), and the broadcasts, which every user's
-- search reads, get an index of their own (core::notifications::search).
--
-- One index holds both columns' trigrams: a search's `title LIKE … OR description LIKE …`
-- reads it twice, and a publish writes one index instead of two. btree_gin ships with
-- PostgreSQL's contrib modules and is a trusted extension, like pg_trgm.
CREATE EXTENSION IF NOT EXISTS btree_gin;

DROP INDEX notifications_title_trgm;
DROP INDEX notifications_description_trgm;

CREATE INDEX notifications_user_text ON notifications
    USING gin (user_ref, LOWER(title) gin_trgm_ops, LOWER(COALESCE(description, '')) gin_trgm_ops)
    WHERE user_ref IS NOT NULL;
CREATE INDEX notifications_broadcast_text ON notifications
    USING gin (LOWER(title) gin_trgm_ops, LOWER(COALESCE(description, '')) gin_trgm_ops)
    WHERE user_ref IS NULL;
