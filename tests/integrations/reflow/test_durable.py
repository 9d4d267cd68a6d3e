"""Reflow tasks in durable executions on SQLite and PostgreSQL: results, Catch, Retry, timeouts, checks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from orchestrator.config import Config
from orchestrator.errors import UsageError
from orchestrator.executions.service import Executions
from orchestrator.integrations import reflow
from orchestrator.registry.service import Registry
from orchestrator.runtime import Runtime, build_runtime
from orchestrator.store import EventStore


@pytest.fixture
def runtime(database_url: str, config: Config) -> Iterator[Runtime]:
    """A runtime with only the reflow integration installed (its executor and its definition check)."""
    store = EventStore.from_url(database_url, auto_upgrade=True)
    registry = Registry(store, reflow.definition_checks(config))
    wired = Runtime(config, store, registry, Executions(store, registry, executors={}))
    reflow.install(wired)
    yield wired
    store.close()


def task(resource: str, **fields: Any) -> dict[str, Any]:
    return {"Type": "Task", "Resource": resource, **fields}


def run(runtime: Runtime, definition: dict[str, Any], input_value: Any, name: str = "e1") -> Any:
    runtime.registry.publish("m", definition)
    loaded, _ = runtime.executions.start("m", input_value, name=name, started_by="ada")
    return runtime.executions.run_until_settled(loaded.id, timeout=300)


def started_runs(done: Any) -> list[dict[str, Any]]:
    return [e.details for e in done.history if e.type == "ExternalRunStarted"]


def test_a_network_result_is_the_task_result(runtime: Runtime) -> None:
    definition = {
        "StartAt": "Square",
        "States": {"Square": task("reflow:squares", InputPath="$.numbers", ResultPath="$.squares", End=True)},
    }
    done = run(runtime, definition, {"numbers": [1, 2, 3, 4, 5]})
    assert done.status == "SUCCEEDED"
    assert done.machine.output == {"numbers": [1, 2, 3, 4, 5], "squares": [1, 4, 9, 16, 25]}
    [started] = started_runs(done)
    assert started["system"] == "reflow" and started["network"] == "squares" and started["attempt"] == 0
    assert isinstance(started["pid"], int) and len(started["runId"]) == 36
    types = [e.type for e in done.history]
    assert types.index("TaskStarted") < types.index("ExternalRunStarted") < types.index("TaskSucceeded")


def test_an_actor_failure_is_caught_in_asl(runtime: Runtime) -> None:
    definition = {
        "StartAt": "Check",
        "States": {
            "Check": task(
                "reflow:boom",
                InputPath="$.numbers",
                Catch=[{"ErrorEquals": ["Reflow.ActorFailed"], "ResultPath": "$.error", "Next": "Recovered"}],
                End=True,
            ),
            "Recovered": {"Type": "Pass", "End": True},
        },
    }
    done = run(runtime, definition, {"numbers": [1, 2, 3]})
    assert done.status == "SUCCEEDED", (done.machine.error, done.machine.cause)
    error = done.machine.output["error"]
    assert error["Error"] == "Reflow.ActorFailed"
    assert "node 'check'" in error["Cause"] and "ValueError: three is not allowed" in error["Cause"]


def test_an_actor_failure_is_retried_with_a_new_run_each_attempt(runtime: Runtime) -> None:
    definition = {
        "StartAt": "Check",
        "States": {
            "Check": task(
                "reflow:boom",
                Retry=[{"ErrorEquals": ["Reflow.ActorFailed"], "IntervalSeconds": 1, "MaxAttempts": 1}],
                End=True,
            )
        },
    }
    done = run(runtime, definition, [3])
    assert done.status == "FAILED" and done.machine.error == "Reflow.ActorFailed"
    runs = started_runs(done)
    assert [r["attempt"] for r in runs] == [0, 1]
    assert runs[0]["runId"] != runs[1]["runId"] and runs[0]["pid"] != runs[1]["pid"]


def test_a_hanging_network_times_out_and_the_worker_goes_on(runtime: Runtime) -> None:
    definition = {
        "StartAt": "Stuck",
        "States": {
            "Stuck": task(
                "reflow:hang",
                TimeoutSeconds=2,
                Catch=[{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.error", "Next": "Squares"}],
                End=True,
            ),
            "Squares": task("reflow:squares", InputPath="$.numbers", ResultPath="$.squares", End=True),
        },
    }
    done = run(runtime, definition, {"numbers": [6]})
    assert done.status == "SUCCEEDED", (done.machine.error, done.machine.cause)
    assert done.machine.output["error"]["Error"] == "States.Timeout"
    assert done.machine.output["squares"] == [36]


def test_a_crash_fails_the_task_not_the_worker(runtime: Runtime) -> None:
    definition = {"StartAt": "Crash", "States": {"Crash": task("reflow:abort", End=True)}}
    done = run(runtime, definition, {})
    assert done.status == "FAILED" and done.machine.error == "Reflow.ChildCrashed"
    assert "SIGABRT" in str(done.machine.cause)


def test_publish_refuses_unknown_and_invalid_networks(runtime: Runtime) -> None:
    definition = {
        "StartAt": "Both",
        "States": {
            "Both": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "Nope", "States": {"Nope": task("reflow:nope", End=True)}},
                    {"StartAt": "Broken", "States": {"Broken": task("reflow:broken", End=True)}},
                ],
                "End": True,
            }
        },
    }
    with pytest.raises(UsageError) as caught:
        runtime.registry.publish("m", definition)
    message = str(caught.value)
    assert "/States/Both/Branches/0/States/Nope/Resource: reflow network 'nope' is not configured" in message
    assert "(networks in " in message and "squares, two_outputs, whoami)" in message
    assert "/States/Both/Branches/1/States/Broken/Resource: reflow network 'broken' is invalid: " in message
    assert "broken.json:/connections/0/to: node 'ghost' does not exist" in message


def test_the_full_runtime_runs_reflow_tasks(database_url: str, config: Config) -> None:
    """Every integration installed (the aws one wraps executors): a reflow task still runs."""
    store = EventStore.from_url(database_url, auto_upgrade=True)
    try:
        wired = build_runtime(store, config)
        definition = {"StartAt": "Square", "States": {"Square": task("reflow:squares", End=True)}}
        done = run(wired, definition, [7, 8])
        assert done.status == "SUCCEEDED" and done.machine.output == [49, 64]
        with pytest.raises(UsageError, match="reflow network 'nope' is not configured"):
            wired.registry.publish("other", {"StartAt": "N", "States": {"N": task("reflow:nope", End=True)}})
    finally:
        store.close()
