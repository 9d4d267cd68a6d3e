"""Durable snapshots on SQLite and PostgreSQL: loading restores the latest one and replays only the rest.

Every ``snapshot_every`` events an append carries a snapshot of the machine. A fresh service (nothing
cached) loads an execution from it, reading only the events after it (checked with a store that counts
what it reads), and continues exactly as a service without snapshots does. A snapshot of another
definition or format, or a broken one, is ignored: the stream is replayed from its first event.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from orchestrator.executions import codec
from orchestrator.executions.service import Executions
from orchestrator.executions.tasks import PENDING, TaskContext
from orchestrator.registry.service import Registry
from orchestrator.store import EventStore, RecordedEvent, Snapshot

T0 = 1_700_000_000.0
LAMBDA = "arn:aws:states:::lambda:invoke"
# A Map whose every iteration runs a task, then a gate that waits for an answer from outside.
MACHINE = {
    "StartAt": "Each",
    "States": {
        "Each": {
            "Type": "Map",
            "MaxConcurrency": 2,
            "ItemProcessor": {
                "StartAt": "Work",
                "States": {
                    "Work": {"Type": "Task", "Resource": LAMBDA, "Next": "Pause"},
                    "Pause": {"Type": "Wait", "Seconds": 5, "End": True},
                },
            },
            "Next": "Gate",
        },
        "Gate": {
            "Type": "Task",
            "Resource": LAMBDA + ".waitForTaskToken",
            "TimeoutSeconds": 100,
            "End": True,
        },
    },
}


class CountingStore(EventStore):
    """The real store, remembering from which version each stream read started."""

    reads: list[tuple[str, int]]

    def read_stream(
        self, stream_id: str, from_version: int = 1, limit: int | None = None
    ) -> list[RecordedEvent]:
        self.reads.append((stream_id, from_version))
        return super().read_stream(stream_id, from_version, limit)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(database_url: str) -> Iterator[CountingStore]:
    opened = CountingStore.from_url(database_url, auto_upgrade=True)
    assert isinstance(opened, CountingStore)
    opened.reads = []
    Registry(opened).publish("m", MACHINE)
    yield opened
    opened.close()


def service(store: EventStore, clock: Clock, every: int) -> Executions:
    def run(context: TaskContext) -> Any:
        if context.task.state_name == "Gate":
            return PENDING  # answered from outside
        return {"item": context.task.parameters}

    return Executions(store, Registry(store), executors={"arn": run}, clock=clock, snapshot_every=every)


def run_to_gate(ex: Executions, clock: Clock, name: str, items: int) -> str:
    """Start, run every task and let every timer fire (moving the clock) until only the gate is left."""
    execution = ex.start("m", list(range(items)), name=name)[0].id
    while True:
        claimed = ex.store.claim("w", [codec.TASK_QUEUE], 10, 60.0)
        for work in claimed:
            ex.process(work, "w")
        if claimed:
            continue
        loaded = ex.load(execution)
        due = loaded.machine.next_due()
        if due is None or loaded.machine.pending_tasks():
            return execution
        clock.now = max(clock.now, due)
        ex.fire_timers(execution)


def test_loading_restores_the_latest_snapshot_and_reads_only_what_follows(store: CountingStore) -> None:
    clock = Clock()
    with_snapshots = service(store, clock, every=20)
    execution = run_to_gate(with_snapshots, clock, "snap", items=12)
    saved = store.load_snapshot(codec.stream_of(execution))
    length = store.stream_version(codec.stream_of(execution))
    assert saved is not None and length > 60 and length - 20 < saved.version <= length
    assert saved.state["sha256"] and saved.state["machine"]["format"] == 1

    store.reads.clear()
    fresh = service(store, clock, every=20).load(execution)
    assert (codec.stream_of(execution), saved.version + 1) in store.reads
    assert all(start > saved.version for stream, start in store.reads if stream == codec.stream_of(execution))
    assert fresh.event_count == length and fresh.status == "RUNNING"
    # the full history is still there when asked for, and is the one the machine would replay to
    assert [e.id for e in fresh.history] == list(range(1, length + 1))
    full = service(store, clock, every=0).load(execution)
    assert [e.to_record() for e in fresh.history] == [e.to_record() for e in full.history]
    assert [t.id for t in fresh.machine.pending_tasks()] == [t.id for t in full.machine.pending_tasks()]
    assert fresh.machine.next_due() == full.machine.next_due() == T0 + 100 + _gate_start(full)


def _gate_start(loaded: Any) -> float:
    started = [e for e in loaded.history if e.type == "TaskStarted"][-1]
    return float(started.timestamp - T0)


def test_an_execution_continued_from_snapshots_writes_the_history_of_one_without(
    store: CountingStore,
) -> None:
    histories = []
    for name, every in (("plain", 0), ("snapped", 7)):
        clock = Clock()
        ex = service(store, clock, every=every)
        execution = run_to_gate(ex, clock, name, items=9)
        # a "restart" between every step: a fresh service, nothing cached
        token = service(store, clock, every=every).load(execution).machine.pending_tasks()[0].id
        clock.now += 3
        service(store, clock, every=every).send_task_success(execution, token, {"approved": True})
        done = service(store, clock, every=every).load(execution)
        assert done.status == "SUCCEEDED"
        histories.append([e.to_record() for e in done.history])
    assert histories[0] == histories[1]
    assert store.load_snapshot(codec.stream_of("m:snapped")) is not None
    assert store.load_snapshot(codec.stream_of("m:plain")) is None


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda s: {**s, "sha256": "0" * 64}, id="another-definition"),
        pytest.param(lambda s: {**s, "machine": {**s["machine"], "format": 0}}, id="another-format"),
        pytest.param(
            lambda s: {**s, "machine": {**s["machine"], "lastEventId": 3}}, id="events-do-not-follow"
        ),
        pytest.param(lambda s: {**s, "machine": {"format": 1}}, id="broken"),
    ],
)
def test_a_snapshot_that_does_not_fit_is_ignored(store: CountingStore, damage: Any) -> None:
    clock = Clock()
    ex = service(store, clock, every=10)
    execution = run_to_gate(ex, clock, "damaged", items=4)
    stream = codec.stream_of(execution)
    saved = store.load_snapshot(stream)
    assert saved is not None
    version = store.stream_version(stream)
    store.append(stream, version, [], snapshot=Snapshot(stream, version, damage(saved.state)))
    store.reads.clear()
    loaded = service(store, clock, every=10).load(execution)
    assert (stream, 1) in store.reads  # replayed from the first event
    assert loaded.status == "RUNNING" and loaded.event_count == version
    check = service(store, clock, every=0).load(execution)
    assert [t.id for t in loaded.machine.pending_tasks()] == [t.id for t in check.machine.pending_tasks()]


def test_a_cached_execution_catches_up_with_another_writer_without_replaying(store: CountingStore) -> None:
    clock = Clock()
    first = service(store, clock, every=0)
    execution = run_to_gate(first, clock, "shared", items=3)
    cached = first.load(execution)
    other = service(store, clock, every=0)
    token = other.load(execution).machine.pending_tasks()[0].id
    other.send_task_success(execution, token, {"approved": True})
    store.reads.clear()
    again = first.load(execution)
    assert again is cached and again.status == "SUCCEEDED"
    assert all(start > 1 for _, start in store.reads)
