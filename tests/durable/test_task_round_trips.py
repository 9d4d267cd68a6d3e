"""What a task costs, on SQLite and PostgreSQL, and the shortcuts behind it never changing a history.

A worker loads an execution, then processes its task: a quick task without deadlines costs that one
read and one append (``TaskStarted`` goes with its result, the decisions that follow and the completed
work item), and published versions are read from the registry once. The shortcuts are checked for
what they must not change: a task that runs longer, or has deadlines, or records facts of its own,
shows ``TaskStarted`` as before; an update decided on a cache another writer made stale is decided
again on the current stream. The store is the real one, counting the calls that reach the database.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from orchestrator.errors import UsageError
from orchestrator.executions import codec
from orchestrator.executions.service import Executions, Loaded
from orchestrator.executions.tasks import PENDING, TaskContext
from orchestrator.registry import model
from orchestrator.registry.service import Registry, UnknownStateMachine
from orchestrator.store import EventStore, NewEvent, RecordedEvent, Snapshot, WorkItem

LAMBDA = "arn:aws:states:::lambda:invoke"
TWO_TASKS = {
    "StartAt": "One",
    "States": {
        "One": {"Type": "Task", "Resource": LAMBDA, "ResultPath": "$.one", "Next": "Two"},
        "Two": {"Type": "Task", "Resource": LAMBDA, "ResultPath": "$.two", "End": True},
    },
}
GATED = {
    "StartAt": "One",
    "States": {
        "One": {"Type": "Task", "Resource": LAMBDA, "ResultPath": "$.one", "Next": "Gate"},
        "Gate": {"Type": "Task", "Resource": LAMBDA + ".waitForTaskToken", "End": True},
    },
}


class CountingStore(EventStore):
    """The real store, counting appends and reads (by stream kind)."""

    calls: Counter[str]

    def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[NewEvent],
        *,
        enqueue: Sequence[WorkItem] = (),
        complete: Sequence[str] = (),
        worker_id: str | None = None,
        snapshot: Snapshot | None = None,
        guard: tuple[str, int] | None = None,
    ) -> list[RecordedEvent]:
        self.calls["append"] += 1
        return super().append(
            stream_id,
            expected_version,
            events,
            enqueue=enqueue,
            complete=complete,
            worker_id=worker_id,
            snapshot=snapshot,
            guard=guard,
        )

    def read_stream(
        self, stream_id: str, from_version: int = 1, limit: int | None = None
    ) -> list[RecordedEvent]:
        self.calls["read " + stream_id.split(":", 1)[0]] += 1
        return super().read_stream(stream_id, from_version, limit)

    def load_snapshot(self, stream_id: str) -> Snapshot | None:
        self.calls["snapshot"] += 1
        return super().load_snapshot(stream_id)


@pytest.fixture
def store(database_url: str) -> Iterator[CountingStore]:
    opened = CountingStore.from_url(database_url, auto_upgrade=True)
    assert isinstance(opened, CountingStore)
    opened.calls = Counter()
    Registry(opened).publish("two", TWO_TASKS)
    Registry(opened).publish("gated", GATED)
    yield opened
    opened.close()


def service(store: EventStore, executor: Any = None, **options: Any) -> Executions:
    """A service as a worker process has it: its own registry, nothing cached."""
    run = executor or (lambda context: {"ran": context.task.state_name})
    return Executions(store, Registry(store), executors={"arn": run}, **options)


def work_off(ex: Executions, worker: str = "w", *, describe: bool = True) -> int:
    """Claim and process every ready task as a worker does (it loads the execution for the item first,
    to describe it in its logs)."""
    done = 0
    while claimed := ex.store.claim(worker, [codec.TASK_QUEUE], 10, 60.0):
        for work in claimed:
            if describe:
                ex.load(str(work.payload["execution"]), work=work)
            ex.process(work, worker)
            done += 1
    return done


def types(loaded: Loaded) -> list[str]:
    return [event.type for event in loaded.history]


def stored(store: EventStore, execution: str) -> list[RecordedEvent]:
    return store.read_stream(codec.stream_of(execution))


# ---------------------------------------------------------------------------- what a task costs
def test_a_quick_task_is_one_append_and_reads_its_execution_once(store: CountingStore) -> None:
    starter = service(store)
    ids = [starter.start("two", {"n": n}, name=f"e{n}")[0].id for n in range(3)]
    store.calls.clear()

    worker = service(store)
    assert work_off(worker) == 6
    # per task: one append, and a read of its execution before it (the worker's load; its item says
    # the stream is too short for a snapshot; on a slow machine a second read may follow)
    assert store.calls["append"] == 6
    assert store.calls["snapshot"] == 0
    assert 6 <= store.calls["read execution"] <= 12
    assert store.calls["read statemachine"] == 1  # published versions are remembered
    for execution in ids:
        records = stored(store, execution)
        started = [r for r in records if r.type == "TaskStarted"]
        succeeded = [r for r in records if r.type == "TaskSucceeded"]
        assert len(started) == len(succeeded) == 2
        for begin, end in zip(started, succeeded, strict=True):
            assert end.version == begin.version + 1
            assert end.recorded_at == begin.recorded_at  # one append
        assert service(store).load(execution).status == "SUCCEEDED"
    assert store.claim("w", [codec.TASK_QUEUE], 10, 60.0) == []  # every item completed


def test_a_task_item_met_first_by_process_is_loaded_as_its_payload_says(store: CountingStore) -> None:
    execution = service(store).start("two", {}, name="direct")[0].id
    store.calls.clear()
    assert work_off(service(store), describe=False) == 2
    assert store.calls["snapshot"] == 0 and store.calls["append"] == 2
    assert service(store).load(execution).status == "SUCCEEDED"


def test_a_stream_grown_long_since_its_item_was_enqueued_is_loaded_from_its_snapshot(
    store: CountingStore,
) -> None:
    writer = service(store, snapshot_every=5)
    execution = writer.start("two", {}, name="grown")[0].id
    [work] = store.claim("w", [codec.TASK_QUEUE], 10, 60.0)
    enqueued_at = codec.events_when_enqueued(work.payload)
    assert enqueued_at is not None and enqueued_at < 5
    for n in range(8):
        writer.record(execution, "RoleAssumed", {"role": f"r{n}"})
    saved = store.load_snapshot(codec.stream_of(execution))
    assert saved is not None and saved.version >= 5
    store.calls.clear()
    worker = service(store, snapshot_every=5)
    loaded = worker.load(execution, work=work)
    assert store.calls["snapshot"] == 1  # the item said short; the stream said otherwise
    full = service(store, snapshot_every=0).load(execution)
    assert loaded.event_count == full.event_count
    assert [t.id for t in loaded.machine.pending_tasks()] == [t.id for t in full.machine.pending_tasks()]
    worker.process(work, "w")
    assert service(store).load(execution).machine.pending_tasks()[0].state_name == "Two"


def test_with_no_grace_the_started_event_is_appended_first(store: CountingStore) -> None:
    execution = service(store).start("two", {}, name="plain")[0].id
    store.calls.clear()
    assert work_off(service(store, start_grace=0)) == 2
    assert store.calls["append"] == 4
    records = stored(store, execution)
    for begin in (r for r in records if r.type == "TaskStarted"):
        end = records[begin.version]  # the next event
        assert end.type == "TaskSucceeded" and end.recorded_at > begin.recorded_at


def test_published_versions_are_read_from_the_registry_once(store: CountingStore) -> None:
    registry = Registry(store)
    store.calls.clear()
    first = registry.published("two", 1)
    assert first is not None and first.definition == TWO_TASKS and first.name == "two"
    assert registry.published("two", 1) is first
    assert store.calls["read statemachine"] == 1
    assert registry.published("two", 2) is None  # not published (yet): read again, not remembered
    assert registry.published("two", 2) is None
    assert store.calls["read statemachine"] == 3
    second = {**TWO_TASKS, "Comment": "second"}
    assert registry.publish("two", second)[0].version == 2
    published = registry.published("two", 2)
    assert published is not None and published.sha256 == model.sha256(second)
    with pytest.raises(UnknownStateMachine):
        registry.published("missing", 1)


# ---------------------------------------------------------------------------- TaskStarted still tells
def test_a_task_running_longer_than_the_grace_has_its_started_event_appended_while_it_runs(
    store: CountingStore,
) -> None:
    release = threading.Event()

    def slow(context: TaskContext) -> Any:
        assert release.wait(60), "never released"
        return {"slow": True}

    execution = service(store).start("two", {}, name="slow")[0].id
    worker = service(store, slow, start_grace=0.05)
    runner = threading.Thread(target=work_off, args=(worker,))
    runner.start()
    try:
        _wait_for(lambda: "TaskStarted" in [r.type for r in stored(store, execution)], "TaskStarted")
        look = service(store).load(execution)
        assert look.machine.pending_tasks()[0].started
    finally:
        release.set()
        runner.join(60)
    assert not runner.is_alive()
    done = service(store).load(execution)
    assert done.status == "SUCCEEDED"
    assert types(done).count("TaskStarted") == 2 and types(done).count("TaskSucceeded") == 2


@pytest.mark.parametrize("deadline", [{"TimeoutSeconds": 600}, {"HeartbeatSeconds": 600}])
def test_a_task_with_deadlines_has_its_started_event_appended_before_it_runs(
    database_url: str, deadline: dict[str, int]
) -> None:
    with EventStore.from_url(database_url, auto_upgrade=True) as store:
        only = {"Type": "Task", "Resource": LAMBDA, "End": True, **deadline}
        Registry(store).publish("deadlines", {"StartAt": "Only", "States": {"Only": only}})
        seen: list[list[str]] = []

        def check(context: TaskContext) -> Any:
            seen.append([r.type for r in stored(store, context.execution)])
            return {}

        execution = service(store).start("deadlines", {}, name="d")[0].id
        assert work_off(service(store, check, start_grace=10.0)) == 1
        assert seen[0][-1] == "TaskStarted"  # stored, with its deadline timer, before the task ran
        assert service(store).load(execution).status == "SUCCEEDED"


def test_a_fact_the_task_records_comes_after_its_started_event(store: CountingStore) -> None:
    recorded: list[int] = []

    def assume(context: TaskContext) -> Any:
        if context.task.state_name == "One":
            recorded.append(context.record("RoleAssumed", {"role": "deployer"}))
        return {}

    execution = service(store).start("two", {}, name="roles")[0].id
    assert work_off(service(store, assume, start_grace=10.0)) == 2
    done = service(store).load(execution)
    assert done.status == "SUCCEEDED"
    first = types(done)[types(done).index("TaskScheduled") :]
    assert first[:4] == ["TaskScheduled", "TaskStarted", "RoleAssumed", "TaskSucceeded"]
    assert done.history[recorded[0] - 1].type == "RoleAssumed"


def gate(context: TaskContext) -> Any:
    """``One`` answers at once; ``Gate`` waits for its token."""
    return PENDING if context.task.state_name == "Gate" else {"one": 1}


def test_a_task_waiting_for_its_token_appends_its_started_event_with_letting_go(store: CountingStore) -> None:
    starter = service(store)
    execution = starter.start("gated", {}, name="g")[0].id
    worker = service(store, gate, start_grace=10.0)
    store.calls.clear()
    assert work_off(worker) == 2
    assert store.calls["append"] == 2
    waiting = service(store).load(execution)
    token = waiting.machine.pending_tasks()[0].id
    assert waiting.machine.tasks[token].started and types(waiting)[-1] == "TaskStarted"
    assert store.claim("w", [codec.TASK_QUEUE], 10, 60.0) == []
    done = starter.send_task_success(execution, token, {"approved": True})
    assert done.status == "SUCCEEDED"


# ---------------------------------------------------------------------------- a stale cache
def test_a_fact_refused_by_a_stale_cache_is_decided_again_on_the_current_stream(
    store: CountingStore,
) -> None:
    answering = service(store)
    execution = answering.start("gated", {}, name="stale")[0].id  # cached: task One pending
    assert work_off(service(store, gate)) == 2  # another process ran One: the gate now waits
    token = service(store).load(execution).machine.pending_tasks()[0].id
    done = answering.send_task_success(execution, token, {"approved": True})
    assert done.status == "SUCCEEDED" and types(done).count("TaskSucceeded") == 2
    with pytest.raises(UsageError, match="no pending task"):
        answering.send_task_success(execution, token, {"again": True})


def test_facts_recorded_from_two_stale_caches_are_both_kept_in_order(store: CountingStore) -> None:
    def wait(context: TaskContext) -> Any:
        return PENDING

    first = service(store, wait)
    execution = first.start("gated", {}, name="both")[0].id
    second = service(store, wait)
    first.load(execution)
    second.load(execution)
    # each service's cache is now the same; the second one's append makes the first one's stale
    # (and its next event takes the same id, with other data)
    at_second = second.record(execution, "RoleAssumed", {"role": "second"})
    at_first = first.record(execution, "RoleAssumed", {"role": "first"})
    assert at_first == at_second + 1
    history = service(store).load(execution).history
    assert [e.details for e in history if e.type == "RoleAssumed"] == [{"role": "second"}, {"role": "first"}]
    assert history[at_first - 1].details == {"role": "first"}


def test_a_stale_cache_is_never_taken_for_the_current_stream(store: CountingStore) -> None:
    stale, other = service(store), service(store)
    execution = stale.start("two", {}, name="ended")[0].id
    other.load(execution)
    assert work_off(service(store)) == 2  # another process ran the execution to its end
    # an update: decided on the stale cache, refused by the append, decided again on the stream
    with pytest.raises(UsageError, match="SUCCEEDED, not RUNNING"):
        stale.stop(execution)
    # nothing to append (no timer is due): the answer is read, not assumed
    assert other.fire_timers(execution).status == "SUCCEEDED"
    assert types(service(store).load(execution)).count("ExecutionAborted") == 0


def _wait_for(condition: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
