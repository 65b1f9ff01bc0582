-- Which center ran each 10-minute push cycle: the first to insert the cycle's row runs it, so
-- centers sharing this database push each cycle once, and a center that dies holds nothing
-- beyond the cycle it claimed.
CREATE TABLE push_cycles (
    tick       TEXT PRIMARY KEY,
    instance   TEXT NOT NULL,
    claimed_at TEXT NOT NULL
);
