-- Named statements of the PostgreSQL backend (psycopg named parameters). Connections run in
-- autocommit: each statement is one transaction and one round trip. JSON columns are read as
-- ::text and decoded by the backend (cheaper than a psycopg loader call per value).

-- name: append
-- See orchestrator_append_v1 in migrations/versions/0001_event_store.postgresql.sql, and v2 (the same,
-- committed asynchronously: follow it with "flush") in 0002_workers.postgresql.sql.
SELECT orchestrator_append_v2(
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

-- name: flush
-- A synchronous commit (the transaction gets an id, so it writes a commit record and waits for the
-- WAL up to it to be flushed): everything committed before it, asynchronous appends included, is
-- durable when it returns. Concurrent flushes share one fsync.
SELECT pg_current_xact_id();

-- name: read_stream
-- The id as text: the backend parses it when it is first read (see RecordedEvent._restore_raw).
SELECT version, position, id::text, type, data::text, metadata::text, recorded_at
FROM events
WHERE stream_id = %(stream_id)s AND version >= %(from_version)s
ORDER BY version
LIMIT %(limit)s;

-- name: read_all
SELECT stream_id, version, position, id::text, type, data::text, metadata::text, recorded_at
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

-- name: next_due
-- When the next item of these queues becomes claimable: the earliest run_at of the unleased ones,
-- or the earliest lease expiry of the leased ones. NULL: the queues hold nothing uncompleted.
SELECT least(
    (SELECT min(run_at) FROM work_items
     WHERE queue = ANY (%(queues)s::text[]) AND completed_at IS NULL AND leased_by IS NULL),
    (SELECT min(lease_expires_at) FROM work_items
     WHERE queue = ANY (%(queues)s::text[]) AND completed_at IS NULL AND leased_by IS NOT NULL)
);

-- name: queue_depths
SELECT queue,
       count(*) FILTER (WHERE run_at <= %(now)s
                          AND (lease_expires_at IS NULL OR lease_expires_at <= %(now)s)),
       count(*) FILTER (WHERE run_at > %(now)s AND leased_by IS NULL),
       count(*) FILTER (WHERE lease_expires_at > %(now)s)
FROM work_items
WHERE completed_at IS NULL AND queue = ANY (%(queues)s::text[])
GROUP BY queue;

-- name: listen_work
-- Notified by orchestrator_work_ready_v1 (migration 0002) with the queue of a claimable item.
LISTEN orchestrator_work;

-- name: save_worker
INSERT INTO workers AS w (id, host, pid, queues, concurrency, started_at, heartbeat_at, current)
VALUES (%(id)s, %(host)s, %(pid)s, %(queues)s::json, %(concurrency)s, %(started_at)s, %(now)s,
        %(current)s::json)
ON CONFLICT (id) DO UPDATE
    SET host = excluded.host, pid = excluded.pid, queues = excluded.queues,
        concurrency = excluded.concurrency, started_at = excluded.started_at,
        heartbeat_at = excluded.heartbeat_at, current = excluded.current;

-- name: remove_worker
DELETE FROM workers WHERE id = %(id)s;

-- name: prune_workers
DELETE FROM workers WHERE heartbeat_at < %(before)s;

-- name: list_workers
SELECT id, host, pid, queues::text, concurrency, started_at, heartbeat_at, current::text
FROM workers
ORDER BY started_at, id;
