-- Revision 0004 for SQLite: the indexes of events keyed by a short stream key instead of stream_id.
-- Statements run in file order; "upgrade:" ones on upgrade, "downgrade:" ones on downgrade.
--
-- Why: the commit of an append writes every page the append dirtied to the WAL (and, later, the
-- checkpoint copies them to the database file). The idempotency index (stream_id, id) is the costly
-- one: event ids are random, so an append's ids land all over its stream's part of the index and
-- dirty about one page each, up to the size of that part; and each of its entries carried the whole
-- stream_id (~45 bytes for "execution:<machine>:<uuid>"). Keyed by stream_key (an integer of 2-4
-- bytes) instead, entries are ~28 bytes rather than ~72, so a stream's part of the index has 2.5x
-- fewer pages to dirty: 100-event appends to 3,000-event streams went from ~55 to ~34 WAL pages
-- each (the workload of bench/store.py). The (stream_key, version) index shrinks the same way.
--
-- stream_key is the position of the stream's first event (version 1), so it is unique per stream
-- and needs no table of its own: the partial index events_stream_start (one entry per stream) maps
-- a stream_id to it. It is never supplied by the application: the backend's insert derives it in
-- SQL from the stream_id (see "insert_event" in backends/sqlite.sql), so (stream_key, version) and
-- (stream_key, id) are unique exactly when (stream_id, version) and (stream_id, id) are. The CHECK
-- below rejects a first event not keyed by its own position, a later one keyed by its own, and a
-- key from the future. (An INSERT by hand that bypasses the backend could still file a later event
-- under another stream's key, as it could always break gap-free positions and versions.)
-- PostgreSQL is unchanged (its 0004 file does nothing).
--
-- The table is rebuilt (SQLite cannot add a NOT NULL column with a CHECK to a table with rows);
-- the migration's write transaction holds the one write lock, so no append runs meanwhile.

-- name: upgrade:rename_events
-- Its triggers and indexes follow it, and are dropped with it below.
ALTER TABLE events RENAME TO events_0003;

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
    -- The position of the first event of the stream (the event's own position when it is that one).
    stream_key INTEGER NOT NULL,
    CONSTRAINT events_stream_key_check CHECK ((version = 1) = (stream_key = position) AND stream_key <= position)
);

-- name: upgrade:copy_events
-- A stream without a version 1 (there is none: versions start at 1) would get its own position as
-- key and fail the CHECK, stopping the upgrade rather than losing or misfiling events.
INSERT INTO events (position, stream_id, version, id, type, data, metadata, recorded_at, stream_key)
SELECT e.position, e.stream_id, e.version, e.id, e.type, e.data, e.metadata, e.recorded_at,
       coalesce(s.position, e.position)
FROM events_0003 AS e
LEFT JOIN events_0003 AS s ON s.stream_id = e.stream_id AND s.version = 1
ORDER BY e.position;

-- name: upgrade:drop_old_events
DROP TABLE events_0003;

-- name: upgrade:events_stream_start
-- stream_id -> stream_key: one entry per stream, written when the stream is created. Queries use it
-- by saying "version = 1" literally (what makes SQLite consider a partial index); with version in
-- it, the index covers them (the key is its rowid): no read of the table.
CREATE UNIQUE INDEX events_stream_start ON events (stream_id, version) WHERE version = 1;

-- name: upgrade:events_stream_version
-- read_stream, the stream's version (the append's concurrency check).
CREATE UNIQUE INDEX events_stream_version ON events (stream_key, version);

-- name: upgrade:events_stream_event_id
-- Ids are unique per stream, the idempotency key of an append (events_by_id). Not globally: an
-- index on random UUIDs alone dirties one page per event.
CREATE UNIQUE INDEX events_stream_event_id ON events (stream_key, id);

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

-- name: downgrade:rename_events
ALTER TABLE events RENAME TO events_0004;

-- name: downgrade:events
-- The table of revision 0001.
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
    CONSTRAINT events_stream_id_key UNIQUE (stream_id, id)
);

-- name: downgrade:copy_events
INSERT INTO events (position, stream_id, version, id, type, data, metadata, recorded_at)
SELECT position, stream_id, version, id, type, data, metadata, recorded_at
FROM events_0004
ORDER BY position;

-- name: downgrade:drop_new_events
DROP TABLE events_0004;

-- name: downgrade:forbid_event_update
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only: UPDATE on table events is not allowed');
END;

-- name: downgrade:forbid_event_delete
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only: DELETE on table events is not allowed');
END;
