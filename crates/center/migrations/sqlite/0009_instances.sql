-- The center instances sharing this database (`instance.rs`): each running one holds its row's
-- liveness lock, and a row whose lock is free is a dead instance's, deleted by whoever notices.
-- `slot` is the instance's number among the live ones: its login to an external broker
-- (`sota-center`, `sota-center-1`, …), since brokers give one session per login. `embedded`:
-- it runs its own broker, and must then be alone. `serving`: it is subscribed to the external
-- broker and takes its share of the devices (`channel/share.rs`).
CREATE TABLE center_instances (
    id         TEXT PRIMARY KEY,
    slot       BIGINT NOT NULL UNIQUE,
    started_at TEXT NOT NULL,
    embedded   BIGINT NOT NULL DEFAULT 0,
    serving    BIGINT NOT NULL DEFAULT 0
);

-- How far its holder got through a push cycle, so that another center finishes the cycle when
-- the holder dies in the middle of it: the last product and device whose push left (recorded
-- before each batch is sent), when that was, and whether the cycle is over. `done` defaults to
-- 1 so that claims written by an older center, which never marks them done, are never resumed;
-- this version's claims start at 0.
ALTER TABLE push_cycles ADD COLUMN pushed_product BIGINT;
ALTER TABLE push_cycles ADD COLUMN pushed_device BIGINT;
ALTER TABLE push_cycles ADD COLUMN pushed_at TEXT;
ALTER TABLE push_cycles ADD COLUMN done BIGINT NOT NULL DEFAULT 1;
