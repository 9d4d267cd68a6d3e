-- Named statements of the PostgreSQL backend (psycopg named parameters). Connections run in
-- autocommit: each statement is one transaction and one round trip. JSON columns are read as
-- ::text and decoded by the backend (cheaper than a psycopg loader call per value).

-- name: append
-- See orchestrator_append_v1 in migrations/versions/0001_event_store.postgresql.sql.
SELECT orchestrator_append_v1(
    %(stream_id)s::text,
    %(expected_version)s::integer,
    %(now)s::timestamptz,
    %(events)s::json,
    %(worker_id)s::text,
    %(complete)s::text[],
    %(enqueue)s::json,
    %(snapshot_version)s::integer,
    %(snapshot_state)s::json
);

-- name: read_stream
SELECT version, position, id, type, data::text, metadata::text, recorded_at
FROM events
WHERE stream_id = %(stream_id)s AND version >= %(from_version)s
ORDER BY version
LIMIT %(limit)s;

-- name: read_all
SELECT stream_id, version, position, id, type, data::text, metadata::text, recorded_at
FROM events
WHERE position > %(after_position)s
ORDER BY position
LIMIT %(limit)s;

-- name: events_by_id
SELECT stream_id, version, position, id, type, data::text, metadata::text, recorded_at
FROM events
WHERE stream_id = %(stream_id)s AND id = ANY (%(ids)s::uuid[]);

-- name: stream_version
SELECT coalesce(max(version), 0) FROM events WHERE stream_id = %(stream_id)s;

-- name: last_position
SELECT coalesce(max(position), 0) FROM events;

-- name: load_snapshot
SELECT version, state::text FROM snapshots WHERE stream_id = %(stream_id)s;

-- name: claim_work
-- SKIP LOCKED: concurrent claimers take different rows instead of queueing behind each other.
-- FOR UPDATE re-checks the WHERE clause on the latest row version, so a row completed or claimed
-- meanwhile is not taken.
WITH due AS (
    SELECT id FROM work_items
    WHERE queue = ANY (%(queues)s::text[])
      AND completed_at IS NULL
      AND run_at <= %(now)s
      AND (lease_expires_at IS NULL OR lease_expires_at <= %(now)s)
    ORDER BY run_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE work_items AS w
SET leased_by = %(worker_id)s, lease_expires_at = %(lease_until)s, attempts = w.attempts + 1
FROM due
WHERE w.id = due.id
RETURNING w.id, w.queue, w.stream_id, w.kind, w.payload::text, w.run_at, w.attempts, w.lease_expires_at;

-- name: renew_work
UPDATE work_items
SET lease_expires_at = %(lease_until)s
WHERE id = ANY (%(ids)s::text[])
  AND leased_by = %(worker_id)s
  AND lease_expires_at > %(now)s
  AND completed_at IS NULL
RETURNING id;

-- name: release_work
UPDATE work_items
SET leased_by = NULL, lease_expires_at = NULL
WHERE id = ANY (%(ids)s::text[])
  AND leased_by = %(worker_id)s
  AND completed_at IS NULL;

-- name: listen
LISTEN orchestrator_events;

-- name: schema_lock
-- Serialises concurrent upgraders (released at the end of the migration transaction).
SELECT pg_advisory_xact_lock(1330791240, 0);
