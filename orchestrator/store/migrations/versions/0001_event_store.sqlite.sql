-- Revision 0001 for SQLite: events (append-only), work items, snapshots.
-- Statements run in file order; "upgrade:" ones on upgrade, "downgrade:" ones on downgrade.
-- UUIDs are 16-byte blobs, JSON is compact text, times are ISO 8601 UTC text with microseconds
-- (fixed width, so they compare correctly as text).

-- name: upgrade:events
-- position is the rowid: dense, in commit order (assigned by the one writer, rows are never deleted).
CREATE TABLE events (
    position INTEGER PRIMARY KEY,
    stream_id TEXT NOT NULL,
    version INTEGER NOT NULL CHECK (version > 0),
    id BLOB NOT NULL CHECK (length(id) = 16),
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    metadata TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, version),
    -- Ids are unique per stream, the idempotency key of an append. Not globally: an index on random
    -- UUIDs alone dirties one page per event and halves append throughput; this one stays local.
    CONSTRAINT events_stream_id_key UNIQUE (stream_id, id)
);

-- name: upgrade:forbid_event_update
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only: UPDATE on table events is not allowed');
END;

-- name: upgrade:forbid_event_delete
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only: DELETE on table events is not allowed');
END;

-- name: upgrade:work_items
CREATE TABLE work_items (
    id TEXT PRIMARY KEY,
    queue TEXT NOT NULL,
    stream_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    run_at TEXT NOT NULL,
    enqueued_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    leased_by TEXT,
    lease_expires_at TEXT,
    completed_at TEXT,
    CONSTRAINT work_items_lease_check CHECK ((leased_by IS NULL) = (lease_expires_at IS NULL))
);

-- name: upgrade:work_items_due
CREATE INDEX work_items_due ON work_items (queue, run_at, id) WHERE completed_at IS NULL;

-- name: upgrade:snapshots
CREATE TABLE snapshots (
    stream_id TEXT PRIMARY KEY,
    version INTEGER NOT NULL CHECK (version > 0),
    state TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);

-- name: downgrade:snapshots
DROP TABLE snapshots;

-- name: downgrade:work_items
DROP TABLE work_items;

-- name: downgrade:events
DROP TABLE events;
