-- The center instance (its id; `instance.rs`) that recorded each pending key: a sweep removes
-- a key's objects and row only once its owner is gone (its liveness lock free), so centers
-- sharing the database never delete each other's uploads in progress. NULL (rows of older
-- versions): no running owner.
ALTER TABLE pending_uploads ADD COLUMN owner TEXT;
