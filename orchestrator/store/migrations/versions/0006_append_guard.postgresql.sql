-- Revision 0006 for PostgreSQL: orchestrator_append_v4, orchestrator_append_v3 with a guard: "commit
-- only if stream p_guard_stream is still at version p_guard_version".
-- Statements run in file order; "upgrade:" ones on upgrade, "downgrade:" ones on downgrade.

-- name: upgrade:append_v4_function
-- Why: an append is often decided from another stream than the one it writes; an execution's start
-- resolves its state machine's version (and alias) from the registry stream "statemachine:<name>".
-- Reading that stream before every start costs a round trip; checking it in the append's transaction
-- costs none, and is stricter: the check runs while the append holds the append lock, which every
-- append of events holds from its insert to its commit, so every append to the guard stream that
-- committed before this one is visible to the check (each statement of this READ COMMITTED function
-- takes a fresh snapshot), and none can commit between the check and this append's commit.
-- - p_guard_stream NULL: exactly orchestrator_append_v3.
-- - p_guard_stream given: the lock is taken first, as v3 takes it (without waiting first: when free,
--   the commit is synchronous and the first position is returned; when taken, it waits, and an
--   append of events commits asynchronously and returns the first position negated, for the caller
--   to flush; an append of no events, which v3 does not lock at all, keeps the synchronous commit).
--   Then the guard stream's version (0 when it has no events) must be p_guard_version, else it
--   raises SQLSTATE OR003 with the actual version as DETAIL (the transaction writes nothing).
--   Then orchestrator_append_v1 (which takes the lock again: advisory locks are re-entrant).
CREATE FUNCTION orchestrator_append_v4(
    p_stream_id text,
    p_expected_version integer,
    p_now timestamptz,
    p_events json,
    p_worker_id text,
    p_complete text[],
    p_enqueue json,
    p_snapshot_version integer,
    p_snapshot_state json,
    p_guard_stream text,
    p_guard_version integer
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_has_events boolean := json_array_length(p_events) > 0;
    v_async boolean := false;
    v_actual integer;
    v_first bigint;
BEGIN
    IF (v_has_events OR p_guard_stream IS NOT NULL) AND NOT pg_try_advisory_xact_lock(1330791240, 1) THEN
        IF v_has_events THEN
            v_async := true;
            PERFORM set_config('synchronous_commit', 'off', true);
        END IF;
        PERFORM pg_advisory_xact_lock(1330791240, 1);
    END IF;
    IF p_guard_stream IS NOT NULL THEN
        SELECT coalesce(max(version), 0) INTO v_actual FROM events WHERE stream_id = p_guard_stream;
        IF v_actual <> p_guard_version THEN
            RAISE EXCEPTION 'guard stream % is at version %, not %', p_guard_stream, v_actual, p_guard_version
                USING ERRCODE = 'OR003', DETAIL = v_actual::text;
        END IF;
    END IF;
    v_first := orchestrator_append_v1(
        p_stream_id, p_expected_version, p_now, p_events, p_worker_id, p_complete, p_enqueue,
        p_snapshot_version, p_snapshot_state
    );
    RETURN CASE WHEN v_async THEN -v_first ELSE v_first END;
END
$$;

-- name: downgrade:append_v4_function
DROP FUNCTION orchestrator_append_v4;
