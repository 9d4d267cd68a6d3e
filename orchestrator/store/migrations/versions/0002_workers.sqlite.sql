-- Revision 0002 for SQLite: the workers registry (SQLite has no NOTIFY: its one worker polls).
-- Statements run in file order; "upgrade:" ones on upgrade, "downgrade:" ones on downgrade.

-- name: upgrade:workers
-- One row per worker process, upserted by the worker every few seconds (operational data).
-- queues and current are JSON text; times are ISO 8601 UTC text with microseconds.
CREATE TABLE workers (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    queues TEXT NOT NULL,
    concurrency INTEGER NOT NULL CHECK (concurrency > 0),
    started_at TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL,
    current TEXT NOT NULL
);

-- name: upgrade:workers_heartbeat
CREATE INDEX workers_heartbeat ON workers (heartbeat_at);

-- name: downgrade:workers
DROP TABLE workers;
