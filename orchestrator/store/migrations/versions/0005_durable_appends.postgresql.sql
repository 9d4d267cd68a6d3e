-- Revision 0005 for PostgreSQL: orchestrator_append_v3, an append that commits synchronously (one
-- round trip, durable when it returns) when the append lock is free, and asynchronously (the caller
-- then flushes, outside the lock) only when it had to wait for it.
-- Statements run in file order; "upgrade:" ones on upgrade, "downgrade:" ones on downgrade.

-- name: upgrade:append_v3_function
-- Why: orchestrator_append_v2 always commits asynchronously and leaves durability to a second
-- statement of the caller, so that the append lock is never held while a commit waits for the disk
-- and concurrent appenders share their fsyncs. A lone appender gains nothing from that and pays a
-- second round trip (and a second commit) per append. So v3 asks for the lock without waiting first:
-- - free (no other append in its insert-to-commit window): the transaction keeps the session's
--   synchronous_commit, so the commit returns once durable (holding the lock for that fsync, which
--   appenders arriving meanwhile wait for: they then take the branch below); it returns the first
--   position (0 for an append of no events, which takes no lock);
-- - taken: it commits asynchronously, as v2 does, and returns the first position negated: the caller
--   must then wait for durability (a synchronous commit that writes WAL: see the backend's "flush")
--   before acknowledging the append. Appenders that queued behind one another share that fsync.
-- Everything else is orchestrator_append_v1 (it takes the lock again: advisory locks are re-entrant).
CREATE FUNCTION orchestrator_append_v3(
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
    IF json_array_length(p_events) > 0 AND NOT pg_try_advisory_xact_lock(1330791240, 1) THEN
        PERFORM set_config('synchronous_commit', 'off', true);
        RETURN -orchestrator_append_v1(
            p_stream_id, p_expected_version, p_now, p_events, p_worker_id, p_complete, p_enqueue,
            p_snapshot_version, p_snapshot_state
        );
    END IF;
    RETURN orchestrator_append_v1(
        p_stream_id, p_expected_version, p_now, p_events, p_worker_id, p_complete, p_enqueue,
        p_snapshot_version, p_snapshot_state
    );
END
$$;

-- name: downgrade:append_v3_function
DROP FUNCTION orchestrator_append_v3;
