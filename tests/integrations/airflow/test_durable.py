"""Airflow Task states in durable executions (SQLite and PostgreSQL) against the real Airflow 3:
a result flows on, a failure is caught in ASL, the history links the runs, a crash is safe, and a
task past its TimeoutSeconds ends with the machine's TaskTimedOut while its DAG run is cancelled,
whether the execution is driven inline or by a worker firing the deadline from the timers queue."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from orchestrator.config import Config
from orchestrator.errors import UsageError
from orchestrator.executions import codec
from orchestrator.executions.tasks import TaskContext
from orchestrator.runtime import Runtime, build_runtime
from orchestrator.store import EventStore
from orchestrator.worker import Worker, WorkerSettings

from .conftest import Airflow

MACHINE = {
    "StartAt": "Sum",
    "States": {
        "Sum": {
            "Type": "Task",
            "Resource": "airflow:local/orch_sum",
            "Parameters": {"numbers.$": "$.numbers", "label.$": "$.label"},
            "ResultPath": "$.sum",
            "Next": "Explode",
        },
        "Explode": {
            "Type": "Task",
            "Resource": "airflow:orch_fail",
            "Parameters": {"value.$": "$.sum.sum"},
            "Catch": [{"ErrorEquals": ["Airflow.DagRunFailed"], "ResultPath": "$.error", "Next": "Done"}],
            "End": True,
        },
        "Done": {"Type": "Succeed"},
    },
}


SLOW = {
    "StartAt": "Slow",
    "States": {
        "Slow": {
            "Type": "Task",
            "Resource": "airflow:orch_slow",
            "Parameters": {"seconds": 600},
            "TimeoutSeconds": 4,
            "End": True,
        }
    },
}


@pytest.fixture
def runtime(database_url: str, airflow_config: Config) -> Iterator[Runtime]:
    store = EventStore.from_url(database_url, auto_upgrade=True)
    runtime = build_runtime(store, airflow_config)
    runtime.registry.publish("pipeline", MACHINE)
    runtime.registry.publish("slow", SLOW)
    yield runtime
    store.close()


def _timed_out_and_cancelled(airflow: Airflow, runtime: Runtime, execution: str) -> None:
    """The task ended with the machine's TaskTimedOut (no TaskFailed) and its DAG run was cancelled."""
    described = runtime.executions.describe(execution)
    assert (described["status"], described["error"]) == ("FAILED", "States.Timeout"), described
    history = runtime.executions.history(execution)
    types = [event.type for event in history]
    assert types.count("TaskTimedOut") == 1 and "TaskFailed" not in types and "TaskSucceeded" not in types
    [started] = [event.details for event in history if event.type == "ExternalRunStarted"]
    assert airflow.run("orch_slow", started["runId"])["state"] == "failed"
    assert airflow.task_states("orch_slow", started["runId"])["sleepy"] in {"failed", "skipped"}


def test_timeout_seconds_inline_records_task_timed_out_and_cancels_the_run(
    airflow: Airflow, runtime: Runtime
) -> None:
    loaded, _ = runtime.executions.start("slow", {})

    runtime.executions.run_until_settled(loaded.id, timeout=300)

    _timed_out_and_cancelled(airflow, runtime, loaded.id)


def test_timeout_seconds_through_a_worker_records_task_timed_out_and_cancels_the_run(
    airflow: Airflow, runtime: Runtime
) -> None:
    loaded, _ = runtime.executions.start("slow", {})
    settings = WorkerSettings(
        concurrency=2,
        until_idle=True,
        lease_seconds=30.0,
        poll_seconds=0.5,
        registry_seconds=0.5,
        heartbeat_seconds=0.3,
    )

    Worker(runtime, settings).run()

    _timed_out_and_cancelled(airflow, runtime, loaded.id)


def test_a_dag_result_flows_on_and_a_failed_run_is_caught(airflow: Airflow, runtime: Runtime) -> None:
    tag = uuid.uuid4().hex[:8]
    loaded, _ = runtime.executions.start("pipeline", {"numbers": [20, 22], "label": tag})

    done = runtime.executions.run_until_settled(loaded.id, timeout=300)

    assert done.status == "SUCCEEDED", runtime.executions.describe(loaded.id)
    output = runtime.executions.describe(loaded.id)["output"]
    assert output["sum"] == {"label": tag, "sum": 42}
    assert output["error"]["Error"] == "Airflow.DagRunFailed"
    assert json.loads(output["error"]["Cause"])["exception"] == "ValueError: bad input: 42"
    started = [e.details for e in runtime.executions.history(loaded.id) if e.type == "ExternalRunStarted"]
    assert [(d["dagId"], d["connection"]) for d in started] == [("orch_sum", "local"), ("orch_fail", "local")]
    assert airflow.run("orch_sum", started[0]["runId"])["conf"] == {"numbers": [20, 22], "label": tag}
    assert airflow.run("orch_fail", started[1]["runId"])["state"] == "failed"


def test_a_worker_crash_after_triggering_resumes_the_same_run(airflow: Airflow, runtime: Runtime) -> None:
    tag = uuid.uuid4().hex[:8]
    loaded, _ = runtime.executions.start("pipeline", {"numbers": [1], "label": tag})
    real = runtime.executors["airflow"]

    class Crash(BaseException):
        """The worker process dies."""

    def crashing(context: TaskContext) -> Any:
        record = context.record

        def record_then_crash(kind: str, details: dict[str, Any]) -> int:
            record(kind, details)
            raise Crash  # right after the run was triggered and recorded

        context.record = record_then_crash
        return real(context)

    runtime.executors["airflow"] = crashing
    claimed = runtime.store.claim("doomed", [codec.TASK_QUEUE], 10, 2.0)
    assert len(claimed) == 1
    with pytest.raises(Crash):
        runtime.executions.process(claimed[0], "doomed")
    runtime.executors["airflow"] = real

    # another worker picks the task up once the dead one's lease has expired
    done = runtime.executions.run_until_settled(loaded.id, timeout=300)

    assert done.status == "SUCCEEDED"
    history = runtime.executions.history(loaded.id)
    sums = [e.details for e in history if e.type == "ExternalRunStarted" and e.details["dagId"] == "orch_sum"]
    assert len(sums) == 1
    mine = [run for run in airflow.runs("orch_sum") if (run["conf"] or {}).get("label") == tag]
    assert [run["dag_run_id"] for run in mine] == [sums[0]["runId"]]
    assert runtime.executions.describe(loaded.id)["output"]["sum"] == {"label": tag, "sum": 1}


def test_publish_refuses_an_unknown_connection(runtime: Runtime) -> None:
    broken = json.loads(json.dumps(MACHINE))
    broken["States"]["Sum"]["Resource"] = "airflow:staging/orch_sum"
    with pytest.raises(UsageError) as raised:
        runtime.registry.publish("broken", broken)
    assert "/States/Sum/Resource: unknown Airflow connection 'staging' (configured: local)" in str(
        raised.value
    )
