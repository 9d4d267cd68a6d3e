-- Revision 0003 for SQLite: execution_summaries, a projection of the "execution:" streams kept in the
-- transaction of every append (see orchestrator/store/summaries.py). Not by triggers, as on PostgreSQL:
-- SQLite runs a row trigger's WHEN clause inside a sub-program called for every inserted row (10%
-- of a 100-event append), so the backend, the one writer, runs the "summarise_*" statements of
-- backends/sqlite.sql for the few events that matter. Below: the backfill, with the same expressions.
-- Statements run in file order; "upgrade:" ones on upgrade, "downgrade:" ones on downgrade.

-- name: upgrade:execution_summaries
-- One row per stream "execution:<id>" whose version 1 is ExecutionStarted; see the PostgreSQL file.
-- Times are seconds since the epoch (REAL), as the history records them (data.ts).
CREATE TABLE execution_summaries (
    stream_id TEXT PRIMARY KEY,
    state_machine TEXT,
    version INTEGER,
    name TEXT,
    started_by TEXT,
    status TEXT NOT NULL,
    started_at REAL NOT NULL,
    stopped_at REAL,
    status_version INTEGER NOT NULL,
    position INTEGER NOT NULL
);

-- name: upgrade:execution_summaries_started
CREATE INDEX execution_summaries_started ON execution_summaries (started_at DESC, position DESC);

-- name: upgrade:execution_summaries_machine
CREATE INDEX execution_summaries_machine
    ON execution_summaries (state_machine, started_at DESC, position DESC);

-- name: upgrade:execution_summaries_status
CREATE INDEX execution_summaries_status ON execution_summaries (status, started_at DESC, position DESC);

-- name: upgrade:execution_summaries_backfill_starts
-- The executions stored before this revision (the write transaction of the migration holds the one
-- write lock, so no append runs meanwhile): their starts...
INSERT OR IGNORE INTO execution_summaries (
    stream_id, state_machine, version, name, started_by, status, started_at, stopped_at,
    status_version, position
)
SELECT
    stream_id,
    CASE WHEN json_type(metadata, '$.state_machine') = 'text'
         THEN json_extract(metadata, '$.state_machine') END,
    CASE WHEN json_type(metadata, '$.version') = 'integer' THEN json_extract(metadata, '$.version') END,
    CASE WHEN json_type(metadata, '$.name') = 'text' THEN json_extract(metadata, '$.name') END,
    CASE WHEN json_type(metadata, '$.started_by') = 'text' THEN json_extract(metadata, '$.started_by') END,
    'RUNNING',
    CASE WHEN json_type(data, '$.ts') IN ('integer', 'real') THEN json_extract(data, '$.ts')
         ELSE (julianday(recorded_at) - 2440587.5) * 86400.0 END,
    NULL,
    1,
    position
FROM events
WHERE type = 'ExecutionStarted' AND version = 1 AND substr(stream_id, 1, 10) = 'execution:';

-- name: upgrade:execution_summaries_backfill_status
-- ... then each one's latest status event.
UPDATE execution_summaries
SET (status, stopped_at, status_version) = (
    SELECT CASE e.type
               WHEN 'ExecutionSucceeded' THEN 'SUCCEEDED'
               WHEN 'ExecutionFailed' THEN 'FAILED'
               WHEN 'ExecutionAborted' THEN 'ABORTED'
               WHEN 'ExecutionTimedOut' THEN 'TIMED_OUT'
               ELSE 'RUNNING'
           END,
           CASE
               WHEN e.type = 'ExecutionRedriven' THEN NULL
               WHEN json_type(e.data, '$.ts') IN ('integer', 'real') THEN json_extract(e.data, '$.ts')
               ELSE (julianday(e.recorded_at) - 2440587.5) * 86400.0
           END,
           e.version
    FROM events AS e
    WHERE e.stream_id = execution_summaries.stream_id
      AND e.type IN ('ExecutionSucceeded', 'ExecutionFailed', 'ExecutionAborted', 'ExecutionTimedOut',
                     'ExecutionRedriven')
    ORDER BY e.version DESC
    LIMIT 1
)
WHERE EXISTS (
    SELECT 1 FROM events AS e
    WHERE e.stream_id = execution_summaries.stream_id
      AND e.type IN ('ExecutionSucceeded', 'ExecutionFailed', 'ExecutionAborted', 'ExecutionTimedOut',
                     'ExecutionRedriven')
);

-- name: downgrade:execution_summaries
DROP TABLE execution_summaries;
