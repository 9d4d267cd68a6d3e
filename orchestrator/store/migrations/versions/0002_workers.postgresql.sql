-- Revision 0002 for PostgreSQL: the workers registry, NOTIFY when work becomes claimable, and appends
-- that hold the append lock for their in-memory work only (orchestrator_append_v2).
-- Statements run in file order; "upgrade:" ones on upgrade, "downgrade:" ones on downgrade.

-- name: upgrade:workers
-- One row per worker process, upserted by the worker every few seconds (derived, operational data:
-- rows are replaced in place and pruned when stale; nothing here is ever needed for correctness).
-- current: JSON array of the items in flight ({"work", "kind", "execution", "state", "since"}).
CREATE TABLE workers (
    id text PRIMARY KEY,
    host text NOT NULL,
    pid integer NOT NULL,
    queues json NOT NULL,
    concurrency integer NOT NULL CHECK (concurrency > 0),
    started_at timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL,
    current json NOT NULL
);

-- name: upgrade:workers_heartbeat
CREATE INDEX workers_heartbeat ON workers (heartbeat_at);

-- name: upgrade:work_ready_function
-- Wakes idle workers (LISTEN orchestrator_work) when an item becomes claimable: enqueued, or given
-- back by a worker (release). The payload is the queue, so a worker ignores queues it does not
-- serve. PostgreSQL delivers identical notifications of one transaction once, so an append that
-- enqueues many items of one queue notifies once. Claims, renewals and completions do not notify.
CREATE FUNCTION orchestrator_work_ready_v1() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('orchestrator_work', NEW.queue);
    RETURN NULL;
END
$$;

-- name: upgrade:work_ready_on_insert
CREATE TRIGGER work_items_ready_inserted
    AFTER INSERT ON work_items
    FOR EACH ROW EXECUTE FUNCTION orchestrator_work_ready_v1();

-- name: upgrade:work_ready_on_release
CREATE TRIGGER work_items_ready_released
    AFTER UPDATE OF leased_by ON work_items
    FOR EACH ROW
    WHEN (OLD.leased_by IS NOT NULL AND NEW.leased_by IS NULL AND NEW.completed_at IS NULL)
    EXECUTE FUNCTION orchestrator_work_ready_v1();

-- name: upgrade:append_v2_function
-- orchestrator_append_v1, committed asynchronously: the commit returns (and releases the append lock)
-- without waiting for its WAL to reach the disk, and the caller then waits for it outside the lock
-- (any synchronous commit flushes the WAL written before it: see the backend's "flush" statement).
-- So the append lock serialises the in-memory work of appends, not one fsync each, and concurrent
-- appenders share their fsyncs (group commit). An append is still acknowledged only once durable.
-- Order is unchanged: an event becomes visible at its commit, in position order, as before. A
-- reader may see an event a few milliseconds before it is durable; any write that follows from it
-- (a claim, an append) flushes it with its own synchronous commit, so nothing durable depends on
-- an event a crash could lose.
CREATE FUNCTION orchestrator_append_v2(
    p_stream_id text,
    p_expected_version integer,
    p_now timestamptz,
    p_events json,
    p_worker_id text,
    p_complete text[],
    p_enqueue json,
    p_snapshot_version integer,
    p_snapshot_state json
) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    RETURN orchestrator_append_v1(
        p_stream_id, p_expected_version, p_now, p_events, p_worker_id, p_complete, p_enqueue,
        p_snapshot_version, p_snapshot_state
    );
END
$$;

-- name: downgrade:append_v2_function
DROP FUNCTION orchestrator_append_v2;

-- name: downgrade:work_ready_on_release
DROP TRIGGER work_items_ready_released ON work_items;

-- name: downgrade:work_ready_on_insert
DROP TRIGGER work_items_ready_inserted ON work_items;

-- name: downgrade:work_ready_function
DROP FUNCTION orchestrator_work_ready_v1;

-- name: downgrade:workers
DROP TABLE workers;
