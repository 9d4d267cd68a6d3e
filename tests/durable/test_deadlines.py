"""Durable task deadlines, heartbeats and back-offs fire from the database, on SQLite and PostgreSQL.

A controllable clock drives both the service (``Executions(clock=...)``) and the store (which work
items are due), so nothing sleeps: the test moves time and lets the work queue do the rest. A
"restart" is a fresh store connection and a fresh ``Executions`` with no cached state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from orchestrator.engine.events import HistoryEvent
from orchestrator.errors import UsageError
from orchestrator.executions import codec
from orchestrator.executions.service import Executions, Loaded
from orchestrator.executions.tasks import PENDING, TaskCancelled, TaskContext, TaskError
from orchestrator.registry.service import Registry
from orchestrator.store import EventStore

T0 = 1_700_000_000.0
LAMBDA = "arn:aws:states:::lambda:invoke"


class Clock:
    """Seconds since the epoch for the service, the same instant as a datetime for the store."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now

    def utc(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)

    def advance(self, seconds: float) -> None:
        self.now += seconds


def machine(task: dict[str, Any]) -> dict[str, Any]:
    """One Task state ``Work`` (and the Pass state ``Caught`` when it has a Catch)."""
    states: dict[str, Any] = {"Work": {"Type": "Task", "Resource": LAMBDA, "End": True, **task}}
    if "Catch" in task:
        states["Caught"] = {"Type": "Pass", "End": True}
    return {"StartAt": "Work", "States": states}


class Env:
    """A store, a registry and a service on one database, all on one clock."""

    def __init__(self, url: str, clock: Clock) -> None:
        self.url = url
        self.clock = clock
        self.stores: list[EventStore] = []
        self.service = self.restart()

    def restart(self, executor: Callable[[TaskContext], Any] | None = None) -> Executions:
        store = EventStore.from_url(self.url, auto_upgrade=True, clock=self.clock.utc)
        self.stores.append(store)
        self.registry = Registry(store)
        self.executor: Callable[[TaskContext], Any] = executor or (lambda _: PENDING)
        self.service = Executions(
            store, self.registry, executors={"arn": lambda c: self.executor(c)}, clock=self.clock
        )
        return self.service

    def drain(self) -> int:
        """Do every work item due now; return how many were done."""
        done = 0
        store = self.service.store
        while claimed := store.claim("w", [codec.TASK_QUEUE, codec.TIMER_QUEUE], 10, 600.0):
            for work in claimed:
                self.service.process(work, "w")
                done += 1
        return done

    def at(self, t: float) -> Loaded:
        """Move the clock to ``T0 + t``, do what is due, return the execution."""
        self.clock.now = T0 + t
        self.drain()
        return self.service.load(self.execution)

    def start(self, definition: dict[str, Any], executor: Callable[[TaskContext], Any]) -> Loaded:
        self.registry.publish("m", definition)
        self.executor = executor
        loaded, _ = self.service.start("m", {"n": 1}, name="e")
        self.execution = loaded.id
        self.drain()
        return self.service.load(loaded.id)

    def close(self) -> None:
        for store in self.stores:
            store.close()


@pytest.fixture
def env(database_url: str) -> Iterator[Env]:
    environment = Env(database_url, Clock())
    yield environment
    environment.close()


def of(loaded: Loaded, kind: str) -> list[HistoryEvent]:
    return [e for e in loaded.history if e.type == kind]


def test_a_missed_heartbeat_times_the_task_out_and_catch_takes_it(env: Env) -> None:
    definition = machine(
        {"HeartbeatSeconds": 10, "Catch": [{"ErrorEquals": ["States.HeartbeatTimeout"], "Next": "Caught"}]}
    )
    loaded = env.start(definition, lambda _: PENDING)
    (task,) = loaded.machine.pending_tasks()
    assert loaded.status == "RUNNING" and task.started
    assert env.service.task_pending(loaded.id, task.id)
    assert env.at(9.9).status == "RUNNING"
    done = env.at(10)
    assert done.status == "SUCCEEDED"
    assert done.machine.output == {"Error": "States.HeartbeatTimeout", "Cause": ""}
    (event,) = of(done, "TaskTimedOut")
    assert (event.timestamp, event.details["error"]) == (T0 + 10, "States.HeartbeatTimeout")
    assert not env.service.task_pending(loaded.id, task.id)
    # a late answer changes nothing
    with pytest.raises(UsageError, match="no pending task"):
        env.service.send_task_success(loaded.id, task.id, {"late": True})
    assert len(env.service.history(loaded.id)) == len(done.history)


def test_a_heartbeating_task_outlives_heartbeat_seconds_and_chatter_is_throttled(env: Env) -> None:
    def worker(context: TaskContext) -> Any:
        for _ in range(6):
            env.clock.advance(4)  # the task works...
            for _ in range(50):  # ...and heartbeats far more often than needed
                context.heartbeat(None)
        return {"worked": 24}

    done = env.start(machine({"HeartbeatSeconds": 10}), worker)
    assert done.status == "SUCCEEDED" and done.machine.output == {"worked": 24}
    beats = of(done, "TaskHeartbeat")
    assert [e.timestamp for e in beats] == [T0 + 4 * i for i in range(1, 7)]  # one per 4 s, not 300
    assert not of(done, "TaskTimedOut")
    # the deadlines that heartbeats replaced fire later as no-ops
    assert env.at(100).history == done.history


def test_a_heartbeat_after_the_deadline_raises_task_cancelled_and_the_answer_is_dropped(env: Env) -> None:
    seen: list[TaskContext] = []

    def slow(context: TaskContext) -> Any:
        seen.append(context)
        env.clock.advance(11)  # misses its 10 s heartbeat
        with pytest.raises(TaskCancelled):
            context.heartbeat(None)
        assert context.cancelled.is_set()
        return {"too": "late"}

    definition = machine(
        {"HeartbeatSeconds": 10, "Catch": [{"ErrorEquals": ["States.Timeout"], "Next": "Caught"}]}
    )
    done = env.start(definition, slow)
    assert len(seen) == 1
    assert done.status == "SUCCEEDED" and done.machine.output["Error"] == "States.HeartbeatTimeout"
    assert len(of(done, "TaskTimedOut")) == 1 and not of(done, "TaskSucceeded")


def test_an_answer_after_timeout_seconds_is_too_late_even_before_the_timer_fired(env: Env) -> None:
    def slow(context: TaskContext) -> Any:
        env.clock.advance(31)
        return {"too": "late"}

    done = env.start(machine({"TimeoutSeconds": 30}), slow)
    assert (done.status, done.machine.error) == ("FAILED", "States.Timeout")
    assert of(done, "TaskTimedOut")[0].timestamp == T0 + 30 and not of(done, "TaskSucceeded")
    assert env.at(100).history == done.history  # the stale deadline timer changes nothing


def test_timeout_seconds_is_retried_with_back_off_from_timers(env: Env) -> None:
    attempts: list[int] = []

    def flaky(context: TaskContext) -> Any:
        attempts.append(context.task.attempt)
        return PENDING if context.task.attempt < 2 else {"attempt": context.task.attempt}

    definition = machine(
        {
            "TimeoutSeconds": 5,
            "Retry": [{"ErrorEquals": ["States.Timeout"], "IntervalSeconds": 2, "BackoffRate": 2.0}],
        }
    )
    env.start(definition, flaky)
    assert env.at(4.9).status == "RUNNING" and attempts == [0]
    assert env.at(6).status == "RUNNING" and attempts == [0]  # timed out at 5, back-off until 7
    assert env.at(7).status == "RUNNING" and attempts == [0, 1]  # started again at 7: deadline 12
    assert env.at(15).status == "RUNNING" and attempts == [0, 1]  # timed out at 12, back-off until 16
    done = env.at(16)
    assert done.status == "SUCCEEDED" and done.machine.output == {"attempt": 2} and attempts == [0, 1, 2]
    assert [e.timestamp - T0 for e in of(done, "TaskTimedOut")] == [5, 12]
    assert [e.timestamp - T0 for e in of(done, "TaskScheduled")] == [0, 7, 16]


def test_a_deadline_fires_after_a_restart(env: Env) -> None:
    definition = machine({"TimeoutSeconds": 30, "HeartbeatSeconds": 20})
    loaded = env.start(definition, lambda _: PENDING)
    (task,) = loaded.machine.pending_tasks()
    env.clock.advance(15)
    env.service.heartbeat(loaded.id, task.id)  # as SendTaskHeartbeat would: heartbeat deadline 35
    for store in env.stores:
        store.close()
    env.stores.clear()
    fresh = env.restart()  # nothing cached: the deadline comes back from the stored history
    assert fresh.load(loaded.id).machine.next_due() == T0 + 30
    assert env.at(29).status == "RUNNING"
    done = env.at(31)
    assert (done.status, done.machine.error) == ("FAILED", "States.Timeout")
    (event,) = of(done, "TaskTimedOut")
    assert (event.timestamp, event.details["error"]) == (T0 + 30, "States.Timeout")
    assert len(of(done, "TaskHeartbeat")) == 1


def test_a_pending_gate_with_timeout_seconds_times_out_from_the_timer_queue(env: Env) -> None:
    def gate(context: TaskContext) -> Any:
        context.record("ApprovalRequested", {"revision": "D1"})
        return PENDING

    definition = machine(
        {"TimeoutSeconds": 3600, "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]}
    )
    loaded = env.start(definition, gate)
    assert loaded.status == "RUNNING"
    store = env.service.store
    assert store.claim("w", [codec.TIMER_QUEUE], 10, 60.0, now=env.clock.utc()) == []
    later = datetime.fromtimestamp(T0 + 3600, UTC)
    (timer,) = store.claim("w", [codec.TIMER_QUEUE], 10, 60.0, now=later)
    assert timer.payload == {"execution": loaded.id, "due": T0 + 3600}
    env.clock.now = T0 + 3600
    env.service.process(timer, "w")
    done = env.service.load(loaded.id)
    assert done.status == "SUCCEEDED" and done.machine.output["Error"] == "States.Timeout"


def test_full_jitter_back_off_fires_from_a_timer(env: Env) -> None:
    calls: list[float] = []

    def once_broken(context: TaskContext) -> Any:
        calls.append(env.clock())
        if len(calls) == 1:
            raise TaskError("Flaky.Error", "first try")
        return "ok"

    definition = machine(
        {
            "Retry": [
                {
                    "ErrorEquals": ["Flaky.Error"],
                    "IntervalSeconds": 100,
                    "MaxAttempts": 1,
                    "JitterStrategy": "FULL",
                }
            ]
        }
    )
    loaded = env.start(definition, once_broken)
    due = loaded.machine.next_due()
    assert loaded.status == "RUNNING" and due is not None and T0 < due < T0 + 100
    # the same back-off comes back from the stored history (the jitter is seeded per execution)
    assert env.restart(once_broken).load(loaded.id).machine.next_due() == due
    assert env.at(due - T0 - 0.001).status == "RUNNING" and len(calls) == 1
    done = env.at(due - T0)
    assert done.status == "SUCCEEDED" and calls == [T0, due]
    assert of(done, "TaskScheduled")[1].timestamp == due
