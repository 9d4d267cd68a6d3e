"""Task deadlines end to end through the worker: HeartbeatSeconds and TimeoutSeconds fire from the
database (the timers queue), fail the task with States.HeartbeatTimeout / States.Timeout, and the
worker cancels the executor that is still running it."""

from __future__ import annotations

import threading
from typing import Any

from orchestrator.executions.tasks import TaskContext, TaskError
from orchestrator.runtime import Runtime
from orchestrator.worker import Worker, WorkerSettings

from .helpers import history_types, start_many, statuses, tasks_machine

FAST = {"lease_seconds": 30.0, "poll_seconds": 0.5, "registry_seconds": 0.5, "heartbeat_seconds": 0.3}


def with_deadlines(**fields: int) -> dict[str, Any]:
    definition = tasks_machine("long")
    definition["States"]["T1-long"].update(fields)
    return definition


def test_a_missed_heartbeat_times_the_task_out_and_cancels_its_executor(runtime: Runtime) -> None:
    cancelled = threading.Event()

    def silent(context: TaskContext) -> Any:
        if context.cancelled.wait(120):  # never heartbeats
            cancelled.set()
            raise TaskError("Test.Cancelled", "cancelled")
        return {}

    runtime.executors["arn"] = silent
    [execution] = start_many(runtime, with_deadlines(HeartbeatSeconds=1), 1, {})
    Worker(runtime, WorkerSettings(concurrency=2, until_idle=True, **FAST)).run()

    assert statuses(runtime, [execution]) == {"FAILED": 1}
    assert runtime.executions.describe(execution)["error"] == "States.HeartbeatTimeout"
    assert cancelled.is_set()  # the worker stopped the executor once the task was no longer pending
    types = history_types(runtime, execution)
    assert types.count("TaskTimedOut") == 1 and "TaskFailed" not in types and "TaskSucceeded" not in types


def test_heartbeats_keep_a_long_task_alive(runtime: Runtime) -> None:
    def chatty(context: TaskContext) -> Any:
        for _ in range(8):
            if context.cancelled.wait(0.3):
                raise TaskError("Test.Cancelled", "cancelled")
            context.heartbeat(None)
        return {"done": True}

    runtime.executors["arn"] = chatty
    [execution] = start_many(runtime, with_deadlines(HeartbeatSeconds=1), 1, {})
    Worker(runtime, WorkerSettings(concurrency=2, until_idle=True, **FAST)).run()

    assert statuses(runtime, [execution]) == {"SUCCEEDED": 1}  # 2.4 s of work under a 1 s heartbeat
    assert "TaskTimedOut" not in history_types(runtime, execution)


def test_timeout_seconds_fails_a_task_that_runs_too_long(runtime: Runtime) -> None:
    def slow(context: TaskContext) -> Any:
        if context.cancelled.wait(120):
            raise TaskError("Test.Cancelled", "cancelled")
        return {}

    runtime.executors["arn"] = slow
    definition = with_deadlines(TimeoutSeconds=1)
    definition["States"]["T1-long"]["Catch"] = [{"ErrorEquals": ["States.Timeout"], "Next": "Caught"}]
    definition["States"]["Caught"] = {"Type": "Pass", "Result": "timed out", "End": True}
    [execution] = start_many(runtime, definition, 1, {})
    Worker(runtime, WorkerSettings(concurrency=2, until_idle=True, **FAST)).run()

    assert statuses(runtime, [execution]) == {"SUCCEEDED": 1}  # caught
    assert runtime.executions.describe(execution)["output"] == "timed out"
