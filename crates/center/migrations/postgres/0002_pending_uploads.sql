-- Firmware object keys this center has started writing (or is deleting) that
-- no committed package names. A key is recorded before its upload starts and
-- removed in the transaction that commits its package row; the start-up sweep
-- deletes exactly the objects still listed here. Anything else under
-- packages/ (another center sharing the store, objects of a newer database
-- than a restored backup) is never touched.
CREATE TABLE pending_uploads (
    object_key TEXT PRIMARY KEY,
    created_at TEXT NOT NULL
);
