-- Named statements of the PostgreSQL backend (psycopg named parameters). Connections run in
-- autocommit: each statement is one transaction and one round trip. JSON columns are read as
-- ::text and decoded by the backend (cheaper than a psycopg loader call per value).

-- name: append
-- See orchestrator_append_v1 in migrations/versions/0001_event_store.postgresql.sql, v3 (the same,
-- committed synchronously when the append lock is free, else asynchronously and returning the first
-- position negated: follow it with "flush") in 0005_durable_appends.postgresql.sql, and v4 (v3 with
-- an optional guard on another stream's version, SQLSTATE OR003) in 0006_append_guard.postgresql.sql.
SELECT orchestrator_append_v4(
    %(stream_id)s::text,
    %(expected_version)s::integer,
    %(now)s::timestamptz,
    %(events)s::json,
    %(worker_id)s::text,
    %(complete)s::text[],
    %(enqueue)s::json,
    %(snapshot_version)s::integer,
    %(snapshot_state)s::json,
    %(guard_stream)s::text,
    %(guard_version)s::integer
);

-- name: flush
-- A synchronous commit that waits for the WAL up to its commit record to be flushed: everything
-- committed before it, asynchronous appends included, is durable when it returns. Concurrent
-- flushes share one fsync. PostgreSQL waits for the flush only when the transaction wrote WAL
-- besides its commit record (RecordTransactionCommit): a transaction that merely took an id, as
-- `SELECT pg_current_xact_id()` does, commits asynchronously, flushing nothing. A transactional
-- logical message is the smallest WAL record a transaction can write (any role may; logical
-- decoding consumers that do not ask for messages never see it).
SELECT pg_logical_emit_message(true, 'orchestrator.flush', '');

-- name: read_stream
-- Versions first to last of a stream. Read in the binary format (integers and times cost
-- nothing to parse); the id as its 16 bytes and the metadata as text, parsed when first read (see
-- RecordedEvent._restore_rows). A stream's versions are dense (1, 2, ...: each append takes the
-- next ones after checking the last), so a range is a limit. No ORDER BY: the backend sorts (rows
-- come in insertion order, so that is one pass), because with one ORDER BY the planner estimates a
-- few hundred rows for a stream of any length and picks a bitmap scan and a sort of whole rows,
-- which spills to disk past work_mem (twice the time of the query for 25,000 events).
SELECT version, position, uuid_send(id), type, data::text, metadata::text, recorded_at
FROM events
WHERE stream_id = %(stream_id)s AND version BETWEEN %(first)s::integer AND %(last)s::integer;

-- name: read_all
-- Binary format, the id as its 16 bytes (see read_stream).
SELECT stream_id, version, position, uuid_send(id), type, data::text, metadata::text, recorded_at
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
-- meanwhile is not taken. Queue by queue (LATERAL): each one's first due items come in index order
-- (work_items_due: queue, run_at, id), so a claim reads a few rows however many are waiting; with
-- "queue = ANY (...)" the planner would read and sort every due item of every queue.
-- A claim commits asynchronously (relaxed): it need not wait for the disk, because a claim lost in a
-- crash only makes its items claimable again (as when a worker dies), and whatever the worker then
-- appends is durable only once the WAL up to it, the claim included, is on disk; the append that
-- completes an item checks its lease, so a result recorded under a lost claim is refused.
-- With each item the events of its stream as one JSON array of
-- [version, position, id, type, data, metadata, recorded_at] (decoded in one call), or NULL when
-- the stream holds more than %(history_limit)s events (0: always NULL). The events table is read
-- with the UPDATE's snapshot: every event committed with or before the claimed item is in it.
WITH relaxed AS (
    SELECT set_config('synchronous_commit', 'off', true)
), due AS (
    SELECT ready.id
    FROM unnest(%(queues)s::text[]) AS q (queue)
    CROSS JOIN LATERAL (
        SELECT id, run_at FROM work_items
        WHERE queue = q.queue
          AND completed_at IS NULL
          AND run_at <= %(now)s
          AND (lease_expires_at IS NULL OR lease_expires_at <= %(now)s)
        ORDER BY run_at, id
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED
    ) AS ready
    ORDER BY ready.run_at, ready.id
    LIMIT %(limit)s
), claimed AS (
    UPDATE work_items AS w
    SET leased_by = %(worker_id)s, lease_expires_at = %(lease_until)s, attempts = w.attempts + 1
    FROM due, relaxed
    WHERE w.id = due.id
    RETURNING w.id, w.queue, w.stream_id, w.kind, w.payload, w.run_at, w.attempts, w.lease_expires_at
)
SELECT c.id, c.queue, c.stream_id, c.kind, c.payload::text, c.run_at, c.attempts, c.lease_expires_at,
       (SELECT CASE WHEN count(*) <= %(history_limit)s
                    THEN json_agg(json_build_array(e.version, e.position, e.id, e.type, e.data,
                                                   e.metadata, e.recorded_at) ORDER BY e.version)::text
               END
        FROM (SELECT * FROM events
              WHERE stream_id = c.stream_id
              ORDER BY version
              LIMIT %(history_limit)s + 1) AS e)
FROM claimed AS c;

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
    (SELECT min(first.run_at)
     FROM unnest(%(queues)s::text[]) AS q (queue)
     CROSS JOIN LATERAL (
         SELECT run_at FROM work_items
         WHERE queue = q.queue AND completed_at IS NULL AND leased_by IS NULL
         ORDER BY run_at
         LIMIT 1
     ) AS first),
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
