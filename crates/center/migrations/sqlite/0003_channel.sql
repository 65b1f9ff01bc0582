-- The device channel (MQTT): device secrets, and each upgrade's state and log.

-- SHA-256 of the device secret issued at dynamic registration; NULL until then.
-- A secret becomes confirmed the first time the device logs in with it; from
-- then on the product secret no longer registers this device again.
ALTER TABLE devices ADD COLUMN secret_hash TEXT;
ALTER TABLE devices ADD COLUMN secret_confirmed INTEGER NOT NULL DEFAULT 0;

-- One row per plan, device and component offered: where that upgrade stands.
CREATE TABLE upgrades (
    plan_id     INTEGER NOT NULL REFERENCES plans(id) ON DELETE CASCADE,
    device_id   INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    identity    TEXT NOT NULL,
    status      INTEGER NOT NULL,
    percent     INTEGER,
    outcome     TEXT NOT NULL CHECK (outcome IN ('pending', 'succeeded', 'failed', 'refused')),
    message     TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    finished_at TEXT,
    PRIMARY KEY (plan_id, device_id, identity)
);

-- Every transition of an upgrade, with its time and source (device or center).
CREATE TABLE upgrade_log (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    plan_id   INTEGER NOT NULL REFERENCES plans(id) ON DELETE CASCADE,
    device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    identity  TEXT NOT NULL,
    at        TEXT NOT NULL,
    source    TEXT NOT NULL CHECK (source IN ('device', 'center')),
    status    INTEGER NOT NULL,
    percent   INTEGER,
    message   TEXT NOT NULL
);

CREATE INDEX upgrades_by_device ON upgrades(device_id);
CREATE INDEX upgrade_log_by_plan ON upgrade_log(plan_id, id);
CREATE INDEX upgrade_log_by_device ON upgrade_log(device_id, id);
