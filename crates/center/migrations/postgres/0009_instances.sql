-- The center instances sharing this database (`instance.rs`): each running one holds its row's
-- liveness lock, and a row whose lock is free is a dead instance's, deleted by whoever notices.
-- `slot` is the instance's number among the live ones: its login to an external broker
-- (`sota-center`, `sota-center-1`, …), since brokers give one session per login.
CREATE TABLE center_instances (
    id         TEXT PRIMARY KEY,
    slot       BIGINT NOT NULL UNIQUE,
    started_at TEXT NOT NULL
);

-- How far its holder got through a push cycle, so that another center finishes the cycle when
-- the holder dies in the middle of it: the last product and device whose push was handed on
-- (recorded before each batch is sent), and whether the cycle is over. Claims of older versions
-- were run to their end or abandoned.
ALTER TABLE push_cycles ADD COLUMN pushed_product BIGINT;
ALTER TABLE push_cycles ADD COLUMN pushed_device BIGINT;
ALTER TABLE push_cycles ADD COLUMN done BIGINT NOT NULL DEFAULT 0;
UPDATE push_cycles SET done = 1;
