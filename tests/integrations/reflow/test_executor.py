"""The executor on its own: the run id, the ExternalRunStarted event, credentials, unknown networks."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest

from orchestrator.engine.interpreter import TaskRequest
from orchestrator.executions.tasks import TaskContext, TaskError
from orchestrator.integrations.reflow.catalog import ReflowSettings
from orchestrator.integrations.reflow.executor import ReflowExecutor, heartbeat_interval, run_id_of

ROLE = {
    "AWS_ACCESS_KEY_ID": "ASIAEXECUTORTEST",
    "AWS_SECRET_ACCESS_KEY": "executor-secret-value",
    "AWS_SESSION_TOKEN": "executor-session-token",
    "AWS_DEFAULT_REGION": "eu-central-1",
}


def context(resource: str, *, attempt: int = 0, parameters: Any = None, **fields: Any) -> TaskContext:
    request = TaskRequest(
        id="task-1",
        state_name="Work",
        resource=resource,
        parameters={} if parameters is None else parameters,
        timeout_seconds=fields.pop("timeout_seconds", 120),
        heartbeat_seconds=None,
        credentials=None,
        attempt=attempt,
        scope="",
    )
    return TaskContext(execution="m:e1", task=request, state_machine="m", version=1, identity="ada", **fields)


def test_the_child_gets_the_role_and_the_history_gets_no_secret(settings: ReflowSettings) -> None:
    recorded: list[tuple[str, dict[str, Any]]] = []
    before = dict(os.environ)

    def record(kind: str, details: dict[str, Any]) -> int:
        recorded.append((kind, details))
        return len(recorded)

    out = ReflowExecutor(settings)(context("reflow:whoami", role_environment=dict(ROLE), record=record))
    assert out["environment"] == ROLE
    assert dict(os.environ) == before
    [(kind, details)] = recorded
    assert kind == "ExternalRunStarted"
    assert details["pid"] == out["pid"] and details["network"] == "whoami"
    assert not any(secret in json.dumps(details) for secret in ROLE.values())


def test_the_run_id_is_derived_from_execution_state_and_attempt() -> None:
    first = run_id_of(context("reflow:x"))
    assert first == run_id_of(context("reflow:x"))
    assert first != run_id_of(context("reflow:x", attempt=1))


def test_unknown_and_invalid_networks_fail_the_task_without_a_child(settings: ReflowSettings) -> None:
    def record(kind: str, details: dict[str, Any]) -> int:
        raise AssertionError(f"nothing may start: {kind}")

    executor = ReflowExecutor(settings)
    with pytest.raises(TaskError) as caught:
        executor(context("reflow:nope", record=record))
    assert (
        caught.value.error == "Reflow.UnknownNetwork"
        and "(networks: abort, boom, broken" in caught.value.cause
    )
    with pytest.raises(TaskError) as caught:
        executor(context("reflow:broken", record=record))
    assert caught.value.error == "Reflow.InvalidNetwork"


def test_heartbeats_come_at_a_third_of_heartbeat_seconds_at_most_every_five_seconds() -> None:
    assert heartbeat_interval(None) == 5.0
    assert heartbeat_interval(3) == 1.0
    assert heartbeat_interval(60) == 5.0


def test_a_task_whose_timeout_already_passed_starts_nothing(settings: ReflowSettings) -> None:
    late = context("reflow:squares", parameters=[1])
    late.task.started_at = time.time() - 10
    late.task.timeout_seconds = 5
    with pytest.raises(TaskError) as caught:
        ReflowExecutor(settings)(late)
    assert caught.value.error == "States.Timeout"
