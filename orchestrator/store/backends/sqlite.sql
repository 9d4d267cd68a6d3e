-- Named statements of the SQLite backend (sqlite3 named parameters). Writes run inside
-- BEGIN IMMEDIATE on the one writer connection; reads run in autocommit on pooled connections.
-- Events of a stream are found by its stream_key, the position of its first event (migration
-- 0004): "(SELECT position FROM events WHERE stream_id = :stream_id AND version = 1)" looks it up in
-- the partial index events_stream_start (the literal "version = 1" is what lets SQLite use it).

-- name: append_head
-- Inside the write transaction: the stream's key (NULL: the stream has no events yet), its version
-- and the last global position.
SELECT head.stream_key,
       (SELECT coalesce(max(version), 0) FROM events WHERE stream_key = head.stream_key),
       (SELECT coalesce(max(position), 0) FROM events)
FROM (SELECT (SELECT position FROM events WHERE stream_id = :stream_id AND version = 1) AS stream_key) AS head;

-- name: insert_event
-- Positional parameters (position, stream_id, version, id, type, data, metadata, recorded_at,
-- stream_key): this one runs for every event. The stream key comes from append_head in the same
-- write transaction: the position of the stream's first event, or for a new stream the first
-- position of this append. The table's CHECK rejects a key that does not fit the version.
INSERT INTO events (position, stream_id, version, id, type, data, metadata, recorded_at, stream_key)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9);

-- name: summarise_start
-- ExecutionStarted at version 1 of an "execution:" stream: its summary (see migration 0003, whose
-- backfill uses the same expressions). Values of the wrong JSON type are stored as NULL; a time that
-- is not a number falls back to recorded_at: a projection never rejects an append.
INSERT OR IGNORE INTO execution_summaries (
    stream_id, state_machine, version, name, started_by, status, started_at, stopped_at,
    status_version, position
)
VALUES (
    :stream_id,
    CASE WHEN json_type(:metadata, '$.state_machine') = 'text'
         THEN json_extract(:metadata, '$.state_machine') END,
    CASE WHEN json_type(:metadata, '$.version') = 'integer' THEN json_extract(:metadata, '$.version') END,
    CASE WHEN json_type(:metadata, '$.name') = 'text' THEN json_extract(:metadata, '$.name') END,
    CASE WHEN json_type(:metadata, '$.started_by') = 'text' THEN json_extract(:metadata, '$.started_by') END,
    'RUNNING',
    CASE WHEN json_type(:data, '$.ts') IN ('integer', 'real') THEN json_extract(:data, '$.ts')
         ELSE (julianday(:recorded_at) - 2440587.5) * 86400.0 END,
    NULL,
    1,
    :position
);

-- name: summarise_status
-- A terminal event (:stops true) or ExecutionRedriven: the status, unless a later event set it.
UPDATE execution_summaries
SET status = :status,
    stopped_at = CASE
        WHEN NOT :stops THEN NULL
        WHEN json_type(:data, '$.ts') IN ('integer', 'real') THEN json_extract(:data, '$.ts')
        ELSE (julianday(:recorded_at) - 2440587.5) * 86400.0
    END,
    status_version = :version
WHERE stream_id = :stream_id AND status_version < :version;

-- name: complete_work
-- Completes the items still leased by the worker; the caller compares the ids returned.
UPDATE work_items
SET completed_at = :now, leased_by = NULL, lease_expires_at = NULL
WHERE id IN (SELECT value FROM json_each(:ids))
  AND leased_by = :worker_id
  AND lease_expires_at > :now
  AND completed_at IS NULL
RETURNING id;

-- name: enqueue_work
INSERT INTO work_items (id, queue, stream_id, kind, payload, run_at, enqueued_at)
VALUES (:id, :queue, :stream_id, :kind, :payload, :run_at, :now)
ON CONFLICT (id) DO NOTHING;

-- name: save_snapshot
INSERT INTO snapshots (stream_id, version, state, recorded_at)
VALUES (:stream_id, :version, :state, :now)
ON CONFLICT (stream_id) DO UPDATE
    SET version = excluded.version, state = excluded.state, recorded_at = excluded.recorded_at
    WHERE snapshots.version <= excluded.version;

-- name: read_stream
SELECT version, position, id, type, data, metadata, recorded_at
FROM events
WHERE stream_key = (SELECT position FROM events WHERE stream_id = :stream_id AND version = 1)
  AND version >= :from_version
ORDER BY version
LIMIT :limit;

-- name: read_all
SELECT stream_id, version, position, id, type, data, metadata, recorded_at
FROM events
WHERE position > :after_position
ORDER BY position
LIMIT :limit;

-- name: event_by_id
SELECT stream_id, version, position, id, type, data, metadata, recorded_at
FROM events
WHERE stream_key = (SELECT position FROM events WHERE stream_id = :stream_id AND version = 1)
  AND id = :id;

-- name: stream_version
SELECT coalesce(max(version), 0) FROM events
WHERE stream_key = (SELECT position FROM events WHERE stream_id = :stream_id AND version = 1);

-- name: last_position
SELECT coalesce(max(position), 0) FROM events;

-- name: load_snapshot
SELECT version, state FROM snapshots WHERE stream_id = :stream_id;

-- name: claim_work
-- Inside the write transaction (one writer: no two claimers see the same row).
UPDATE work_items
SET leased_by = :worker_id, lease_expires_at = :lease_until, attempts = attempts + 1
WHERE id IN (
    SELECT id FROM work_items
    WHERE queue IN (SELECT value FROM json_each(:queues))
      AND completed_at IS NULL
      AND run_at <= :now
      AND (lease_expires_at IS NULL OR lease_expires_at <= :now)
    ORDER BY run_at, id
    LIMIT :limit
)
RETURNING id, queue, stream_id, kind, payload, run_at, attempts, lease_expires_at;

-- name: renew_work
UPDATE work_items
SET lease_expires_at = :lease_until
WHERE id IN (SELECT value FROM json_each(:ids))
  AND leased_by = :worker_id
  AND lease_expires_at > :now
  AND completed_at IS NULL
RETURNING id;

-- name: release_work
UPDATE work_items
SET leased_by = NULL, lease_expires_at = NULL
WHERE id IN (SELECT value FROM json_each(:ids))
  AND leased_by = :worker_id
  AND completed_at IS NULL;

-- name: next_due
-- When the next item of these queues becomes claimable: the earliest run_at of the unleased ones,
-- or the earliest lease expiry of the leased ones. NULL: the queues hold nothing uncompleted.
-- (SQLite's two-argument min() is NULL when either is: coalesce each to the other.)
SELECT min(coalesce(r, l), coalesce(l, r))
FROM (SELECT (SELECT min(run_at) FROM work_items
              WHERE queue IN (SELECT value FROM json_each(:queues))
                AND completed_at IS NULL AND leased_by IS NULL) AS r,
             (SELECT min(lease_expires_at) FROM work_items
              WHERE queue IN (SELECT value FROM json_each(:queues))
                AND completed_at IS NULL AND leased_by IS NOT NULL) AS l);

-- name: queue_depths
SELECT queue,
       count(*) FILTER (WHERE run_at <= :now AND (lease_expires_at IS NULL OR lease_expires_at <= :now)),
       count(*) FILTER (WHERE run_at > :now AND leased_by IS NULL),
       count(*) FILTER (WHERE lease_expires_at > :now)
FROM work_items
WHERE completed_at IS NULL AND queue IN (SELECT value FROM json_each(:queues))
GROUP BY queue;

-- name: work_mark
-- Grows with every work item inserted (rows are never deleted): how wait_for_work notices the
-- items other processes enqueue.
SELECT coalesce(max(rowid), 0) FROM work_items;

-- name: save_worker
INSERT INTO workers (id, host, pid, queues, concurrency, started_at, heartbeat_at, current)
VALUES (:id, :host, :pid, :queues, :concurrency, :started_at, :now, :current)
ON CONFLICT (id) DO UPDATE
    SET host = excluded.host, pid = excluded.pid, queues = excluded.queues,
        concurrency = excluded.concurrency, started_at = excluded.started_at,
        heartbeat_at = excluded.heartbeat_at, current = excluded.current;

-- name: remove_worker
DELETE FROM workers WHERE id = :id;

-- name: prune_workers
DELETE FROM workers WHERE heartbeat_at < :before;

-- name: list_workers
SELECT id, host, pid, queues, concurrency, started_at, heartbeat_at, current
FROM workers
ORDER BY started_at, id;
