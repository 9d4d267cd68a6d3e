"""Real networks run in real child processes: results, actor failures, crashes, hangs, credentials."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from orchestrator.executions.tasks import TaskCancelled, TaskError
from orchestrator.integrations.reflow.catalog import ReflowSettings
from orchestrator.integrations.reflow.runner import run_isolated

EXAMPLES = Path(__file__).resolve().parents[3] / "statemachines" / "networks"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_fan_out_and_join_returns_every_result_in_order(settings: ReflowSettings) -> None:
    numbers = list(range(1, 41))
    assert run_isolated(settings.load("squares"), numbers, settings, timeout=120) == [n * n for n in numbers]


def test_an_empty_fan_out_joins_to_an_empty_list(settings: ReflowSettings) -> None:
    assert run_isolated(settings.load("squares"), [], settings, timeout=120) == []


def test_named_outputs_make_an_object(settings: ReflowSettings) -> None:
    out = run_isolated(settings.load("two_outputs"), ["a", "b"], settings, timeout=120)
    assert out == {"items": ["a", "b"], "count": 2}


def test_the_example_networks_run() -> None:
    examples = ReflowSettings(folder=EXAMPLES)
    assert examples.names() == sorted(examples.names()) and "greetings" in examples.names()
    out = run_isolated(examples.load("greetings"), ["Ada", "Grace"], examples, timeout=120)
    assert out == ["Hello, Ada!", "Hello, Grace!"]
    built = run_isolated(examples.load("build"), {"revision": "D7"}, examples, timeout=120)
    assert built == {"revision": "D7", "artifact": "service-D7.tar.gz"}


def test_an_actor_exception_names_the_node_and_the_exception(settings: ReflowSettings) -> None:
    with pytest.raises(TaskError) as caught:
        run_isolated(settings.load("boom"), [1, 2, 3, 4], settings, timeout=120)
    assert caught.value.error == "Reflow.ActorFailed"
    assert "node 'check'" in caught.value.cause
    assert "ValueError: three is not allowed (item 2)" in caught.value.cause


@pytest.mark.parametrize(
    ("network", "expected"),
    [("silent", "returned without calling ctx.done()"), ("refuses", "failed: refused: not today")],
)
def test_an_actor_that_does_not_finish_its_call_fails_the_run(
    settings: ReflowSettings, network: str, expected: str
) -> None:
    with pytest.raises(TaskError) as caught:
        run_isolated(settings.load(network), {}, settings, timeout=120)
    assert caught.value.error == "Reflow.ActorFailed" and expected in caught.value.cause


def test_a_crashing_child_fails_with_its_signal_and_the_caller_survives(settings: ReflowSettings) -> None:
    with pytest.raises(TaskError) as caught:
        run_isolated(settings.load("abort"), {}, settings, timeout=120)
    assert caught.value.error == "Reflow.ChildCrashed"
    assert "killed by signal SIGABRT" in caught.value.cause
    # this process is unharmed and still runs networks
    assert run_isolated(settings.load("squares"), [2], settings, timeout=120) == [4]


def test_a_hanging_network_is_killed_at_its_timeout(settings: ReflowSettings) -> None:
    pids: list[int] = []
    with pytest.raises(TaskError) as caught:
        run_isolated(settings.load("hang"), {}, settings, timeout=1.5, on_start=pids.append)
    assert caught.value.error == "States.Timeout"
    assert f"child process {pids[0]} was killed" in caught.value.cause
    assert not _alive(pids[0])


def test_cancelling_kills_the_child(settings: ReflowSettings) -> None:
    cancelled = threading.Event()
    pids: list[int] = []

    def started(pid: int) -> None:
        pids.append(pid)
        threading.Timer(0.5, cancelled.set).start()

    with pytest.raises(TaskCancelled):
        run_isolated(settings.load("hang"), {}, settings, timeout=300, cancelled=cancelled, on_start=started)
    assert not _alive(pids[0])


def test_heartbeats_flow_while_waiting_and_a_cancelled_heartbeat_kills_the_child(
    settings: ReflowSettings,
) -> None:
    beats: list[float] = []
    pids: list[int] = []

    def heartbeat() -> None:
        beats.append(time.monotonic())
        if len(beats) == 3:
            raise TaskCancelled("the execution was stopped")

    with pytest.raises(TaskCancelled, match="stopped"):
        run_isolated(
            settings.load("hang"),
            {},
            settings,
            timeout=300,
            heartbeat=heartbeat,
            heartbeat_interval=0.2,
            on_start=pids.append,
        )
    assert len(beats) == 3 and not _alive(pids[0])


def test_role_credentials_reach_the_child_through_its_environment_only(settings: ReflowSettings) -> None:
    role = {
        "AWS_ACCESS_KEY_ID": "ASIATESTROLEKEY",
        "AWS_SECRET_ACCESS_KEY": "role-secret-value",
        "AWS_SESSION_TOKEN": "role-session-token",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    before = dict(os.environ)
    os.environ["AWS_PROFILE"] = "worker-own-profile"  # the worker's own identity must not leak in
    try:
        out = run_isolated(settings.load("whoami"), {}, settings, role_environment=role, timeout=120)
    finally:
        del os.environ["AWS_PROFILE"]
    assert out["environment"] == role
    assert out["pid"] != os.getpid()
    assert dict(os.environ) == before
    assert not any(value in os.environ.values() for value in role.values())


def test_without_a_role_the_child_inherits_the_environment(settings: ReflowSettings) -> None:
    os.environ["AWS_DEFAULT_REGION"] = "us-east-2"
    try:
        out = run_isolated(settings.load("whoami"), {}, settings, timeout=120)
    finally:
        del os.environ["AWS_DEFAULT_REGION"]
    assert out["environment"].get("AWS_DEFAULT_REGION") == "us-east-2"


def test_a_missing_required_variable_fails_before_start(settings: ReflowSettings) -> None:
    assert "REFLOW_TEST_REQUIRED_TOKEN" not in os.environ
    with pytest.raises(TaskError) as caught:
        run_isolated(settings.load("needs_env"), {}, settings, timeout=120)
    assert caught.value.error == "Reflow.MissingEnvironment"
    assert "node 'who' needs environment variable REFLOW_TEST_REQUIRED_TOKEN" in caught.value.cause
