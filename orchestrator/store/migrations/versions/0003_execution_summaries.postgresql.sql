-- Revision 0003 for PostgreSQL: execution_summaries, a projection of the "execution:" streams that the
-- database maintains in the transaction of every append (see orchestrator/store/summaries.py).
-- Statements run in file order; "upgrade:" ones on upgrade, "downgrade:" ones on downgrade.

-- name: upgrade:execution_summaries
-- One row per stream "execution:<id>" whose version 1 is ExecutionStarted. Derived data: every column
-- comes from the events (the facts of ExecutionStarted's metadata, the status and stop time of the
-- latest status event). Times are seconds since the epoch as the history records them (data.ts),
-- falling back to the event's recorded_at. status_version: the version of the event that set status,
-- so an older event never overrides a newer one.
CREATE TABLE execution_summaries (
    stream_id text PRIMARY KEY,
    state_machine text,
    version integer,
    name text,
    started_by text,
    status text NOT NULL,
    started_at double precision NOT NULL,
    stopped_at double precision,
    status_version integer NOT NULL,
    position bigint NOT NULL
);

-- name: upgrade:execution_summaries_started
-- Newest first, for the unfiltered list; (started_at, position) is the list's total order.
CREATE INDEX execution_summaries_started ON execution_summaries (started_at DESC, position DESC);

-- name: upgrade:execution_summaries_machine
CREATE INDEX execution_summaries_machine
    ON execution_summaries (state_machine, started_at DESC, position DESC);

-- name: upgrade:execution_summaries_status
CREATE INDEX execution_summaries_status ON execution_summaries (status, started_at DESC, position DESC);

-- name: upgrade:project_execution_function
-- Applies one event of an "execution:" stream to its summary: ExecutionStarted at version 1 inserts
-- it; ExecutionSucceeded/Failed/Aborted/TimedOut and ExecutionRedriven set its status (and stop
-- time) unless a later event set it already. Values of the wrong JSON type are stored as NULL (and a
-- time that is not a plain number falls back to recorded_at): a projection never rejects an append.
CREATE FUNCTION orchestrator_project_execution_v1(e events) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_ts double precision := CASE
        WHEN json_typeof(e.data -> 'ts') = 'number' AND (e.data ->> 'ts') ~ '^-?[0-9]{1,15}(\.[0-9]+)?$'
        THEN (e.data ->> 'ts')::double precision
        ELSE extract(epoch FROM e.recorded_at)::double precision
    END;
BEGIN
    IF e.type = 'ExecutionStarted' THEN
        IF e.version = 1 THEN
            INSERT INTO execution_summaries AS s (
                stream_id, state_machine, version, name, started_by, status, started_at, stopped_at,
                status_version, position
            )
            VALUES (
                e.stream_id,
                CASE WHEN json_typeof(e.metadata -> 'state_machine') = 'string'
                     THEN e.metadata ->> 'state_machine' END,
                CASE WHEN (e.metadata ->> 'version') ~ '^[0-9]{1,9}$'
                     AND json_typeof(e.metadata -> 'version') = 'number'
                     THEN (e.metadata ->> 'version')::integer END,
                CASE WHEN json_typeof(e.metadata -> 'name') = 'string' THEN e.metadata ->> 'name' END,
                CASE WHEN json_typeof(e.metadata -> 'started_by') = 'string'
                     THEN e.metadata ->> 'started_by' END,
                'RUNNING', v_ts, NULL, 1, e.position
            )
            ON CONFLICT (stream_id) DO NOTHING;
        END IF;
        RETURN;
    END IF;
    UPDATE execution_summaries
    SET status = CASE e.type
                     WHEN 'ExecutionSucceeded' THEN 'SUCCEEDED'
                     WHEN 'ExecutionFailed' THEN 'FAILED'
                     WHEN 'ExecutionAborted' THEN 'ABORTED'
                     WHEN 'ExecutionTimedOut' THEN 'TIMED_OUT'
                     ELSE 'RUNNING'
                 END,
        stopped_at = CASE WHEN e.type = 'ExecutionRedriven' THEN NULL ELSE v_ts END,
        status_version = e.version
    WHERE stream_id = e.stream_id AND status_version < e.version;
END
$$;

-- name: upgrade:execution_summary_trigger_function
CREATE FUNCTION orchestrator_execution_summary_v1() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM orchestrator_project_execution_v1(NEW);
    RETURN NULL;
END
$$;

-- name: upgrade:execution_summary_trigger
-- Fires in the transaction of the append (every version of the append function, so workers of the
-- previous release keep the projection current too), after each inserted event the WHEN clause
-- selects: the other events of the append cost one comparison each, and no function call.
-- Creating it locks events against writes until this migration commits, so the backfill below sees
-- every event, and every later event goes through the trigger.
CREATE TRIGGER events_execution_summaries
    AFTER INSERT ON events
    FOR EACH ROW
    WHEN (
        substr(NEW.stream_id, 1, 10) = 'execution:'
        AND NEW.type IN ('ExecutionStarted', 'ExecutionSucceeded', 'ExecutionFailed', 'ExecutionAborted',
                         'ExecutionTimedOut', 'ExecutionRedriven')
    )
    EXECUTE FUNCTION orchestrator_execution_summary_v1();

-- name: upgrade:execution_summaries_backfill
-- The executions stored before this revision, event by event in position order.
DO $$
DECLARE
    e events;
BEGIN
    FOR e IN
        SELECT * FROM events
        WHERE substr(stream_id, 1, 10) = 'execution:'
          AND type IN ('ExecutionStarted', 'ExecutionSucceeded', 'ExecutionFailed', 'ExecutionAborted',
                       'ExecutionTimedOut', 'ExecutionRedriven')
        ORDER BY position
    LOOP
        PERFORM orchestrator_project_execution_v1(e);
    END LOOP;
END
$$;

-- name: downgrade:execution_summary_trigger
DROP TRIGGER events_execution_summaries ON events;

-- name: downgrade:execution_summary_trigger_function
DROP FUNCTION orchestrator_execution_summary_v1;

-- name: downgrade:project_execution_function
DROP FUNCTION orchestrator_project_execution_v1;

-- name: downgrade:execution_summaries
DROP TABLE execution_summaries;
