-- The center's metadata. Kept to portable SQL (no SQLite-only types) so a
-- PostgreSQL backend can follow with the same schema.

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE operator_tokens (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL UNIQUE,
    -- SHA-256 of the token; the token itself is shown once and never stored.
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);

CREATE TABLE products (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    product_key    TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    product_secret TEXT NOT NULL,
    demo           INTEGER NOT NULL DEFAULT 0,
    created_at     TEXT NOT NULL
);

-- Devices are created the first time they register (a later issue wires MQTT
-- registration to `device::register`); key unique within its product.
CREATE TABLE devices (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    product_id    INTEGER NOT NULL REFERENCES products(id),
    device_key    TEXT NOT NULL,
    registered_at TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    UNIQUE (product_id, device_key)
);

CREATE TABLE device_components (
    device_id   INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    identity    TEXT NOT NULL,
    version     TEXT NOT NULL,
    reported_at TEXT NOT NULL,
    PRIMARY KEY (device_id, identity)
);

CREATE TABLE packages (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    name           TEXT NOT NULL,
    component_type TEXT NOT NULL CHECK (component_type IN ('FOTA', 'SOTA')),
    package_type   TEXT NOT NULL CHECK (package_type IN ('full', 'delta')),
    source_version TEXT,
    target_version TEXT NOT NULL,
    remarks        TEXT NOT NULL DEFAULT '',
    demo           INTEGER NOT NULL DEFAULT 0,
    created_at     TEXT NOT NULL
);

CREATE TABLE package_files (
    package_id INTEGER NOT NULL REFERENCES packages(id) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    file_name  TEXT NOT NULL,
    object_key TEXT NOT NULL UNIQUE,
    size       BIGINT NOT NULL,
    md5        TEXT NOT NULL,
    crc32      TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    PRIMARY KEY (package_id, position)
);

CREATE TABLE plans (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    name                 TEXT NOT NULL,
    product_id           INTEGER NOT NULL REFERENCES products(id),
    time_zone            TEXT NOT NULL,
    push_start           TEXT,
    push_end             TEXT,
    upgrade_mode         TEXT NOT NULL CHECK (upgrade_mode IN ('silent', 'manual')),
    min_battery_percent  INTEGER NOT NULL,
    min_signal_dbm       INTEGER NOT NULL,
    space_needed_bytes   BIGINT NOT NULL,
    download_retries     INTEGER NOT NULL,
    state                TEXT NOT NULL CHECK (state IN ('draft', 'active', 'paused', 'finished')),
    demo                 INTEGER NOT NULL DEFAULT 0,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL
);

CREATE TABLE plan_device_lists (
    plan_id    INTEGER NOT NULL REFERENCES plans(id) ON DELETE CASCADE,
    list       TEXT NOT NULL CHECK (list IN ('white', 'black')),
    device_key TEXT NOT NULL,
    PRIMARY KEY (plan_id, list, device_key)
);

CREATE TABLE plan_components (
    plan_id        INTEGER NOT NULL REFERENCES plans(id) ON DELETE CASCADE,
    identity       TEXT NOT NULL,
    component_type TEXT NOT NULL,
    package_id     INTEGER NOT NULL REFERENCES packages(id),
    PRIMARY KEY (plan_id, identity)
);

CREATE TABLE plan_texts (
    plan_id  INTEGER NOT NULL REFERENCES plans(id) ON DELETE CASCADE,
    language TEXT NOT NULL,
    text     TEXT NOT NULL,
    PRIMARY KEY (plan_id, language)
);

CREATE TABLE verifications (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    package_id         INTEGER NOT NULL REFERENCES packages(id) ON DELETE CASCADE,
    device_id          INTEGER NOT NULL REFERENCES devices(id),
    component_identity TEXT NOT NULL,
    outcome            TEXT NOT NULL CHECK (outcome IN ('pending', 'succeeded', 'failed')),
    created_at         TEXT NOT NULL,
    finished_at        TEXT
);

CREATE TABLE verification_log (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    verification_id INTEGER NOT NULL REFERENCES verifications(id) ON DELETE CASCADE,
    at              TEXT NOT NULL,
    message         TEXT NOT NULL
);

CREATE INDEX devices_by_product ON devices(product_id);
CREATE INDEX plans_by_product ON plans(product_id, state);
CREATE INDEX verifications_by_package ON verifications(package_id);
