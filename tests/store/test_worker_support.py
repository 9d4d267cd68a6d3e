"""Contract: what the worker daemon asks of the store beyond claims (both backends).

When the next item falls due (``next_due``), queue depths, waiting for work to be enqueued or
released (``wait_for_work``: LISTEN/NOTIFY on PostgreSQL, polling on SQLite), and the workers
registry.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.store import EventStore, QueueDepth, WorkerRecord, WorkItem

from .helpers import FakeClock, event


@pytest.fixture
def store(open_store: Callable[..., EventStore], clock: FakeClock) -> EventStore:
    """A store on the clock the test moves."""
    return open_store(clock=clock)


@pytest.fixture
def queue(unique: Callable[[str], str]) -> str:
    return unique("queue")


def enqueue(store: EventStore, stream: str, *items: WorkItem) -> None:
    store.append(stream, store.stream_version(stream), [event()], enqueue=list(items))


def test_next_due_is_the_earliest_run_at_or_lease_expiry(
    store: EventStore, clock: FakeClock, queue: str, unique: Callable[[str], str]
) -> None:
    stream = unique("exec")
    assert store.next_due([queue]) is None
    soon, later = clock.now + timedelta(seconds=10), clock.now + timedelta(seconds=60)
    enqueue(
        store,
        stream,
        WorkItem(f"{queue}/now", queue, stream, "task", {}),
        WorkItem(f"{queue}/soon", queue, stream, "timer", {}, run_at=soon),
        WorkItem(f"{queue}/later", queue, stream, "timer", {}, run_at=later),
    )
    assert store.next_due([queue]) == clock.now
    [claimed] = store.claim("w1", [queue], 1, lease_seconds=5)
    # the claimed item comes back when its lease expires, before the timers
    assert store.next_due([queue]) == clock.now + timedelta(seconds=5)
    store.append(stream, store.stream_version(stream), [event()], complete=[claimed.id], worker_id="w1")
    assert store.next_due([queue]) == soon
    assert store.next_due([unique("other-queue")]) is None


def test_queue_depths_count_ready_scheduled_and_leased(
    store: EventStore, clock: FakeClock, queue: str, unique: Callable[[str], str]
) -> None:
    stream, empty = unique("exec"), unique("empty")
    enqueue(
        store,
        stream,
        *[WorkItem(f"{queue}/t{n}", queue, stream, "task", {}) for n in range(3)],
        WorkItem(f"{queue}/timer", queue, stream, "timer", {}, run_at=clock.now + timedelta(hours=1)),
    )
    store.claim("w1", [queue], 1, lease_seconds=30)
    assert store.queue_depths([queue, empty]) == {
        queue: QueueDepth(queue, ready=2, scheduled=1, leased=1),
        empty: QueueDepth(empty, 0, 0, 0),
    }
    clock.advance(31)  # the lease expired: that item is ready again
    assert store.queue_depths([queue])[queue] == QueueDepth(queue, ready=3, scheduled=1, leased=0)


def test_wait_for_work_wakes_on_enqueue_and_release(
    open_store: Callable[..., EventStore], backend: str, queue: str, unique: Callable[[str], str]
) -> None:
    """Enqueues by another store (process) wake the waiter on both; releases by another process only
    on PostgreSQL (SQLite notices its own process's releases; others' when their lease expires)."""
    waiter, writer = open_store(), open_store()
    releaser = writer if backend == "postgres" else waiter
    assert waiter.wait_for_work([queue], timeout=5) is True  # the first call: look now
    assert waiter.wait_for_work([queue], timeout=0.3) is False  # nothing happened since
    stream = unique("exec")

    def later(action: Callable[[], object]) -> threading.Thread:
        thread = threading.Thread(target=lambda: (time.sleep(0.3), action()))
        thread.start()
        return thread

    thread = later(lambda: enqueue(writer, stream, WorkItem(f"{queue}/a", queue, stream, "task", {})))
    started = time.monotonic()
    assert waiter.wait_for_work([queue], timeout=30) is True
    assert time.monotonic() - started < 25  # woken by the enqueue, not by the timeout
    thread.join()

    [claimed] = releaser.claim("w1", [queue], 1, lease_seconds=60)
    waiter.wait_for_work([queue], timeout=0.5)  # whatever the claim stirred up, if anything
    thread = later(lambda: releaser.release("w1", [claimed.id]))
    assert waiter.wait_for_work([queue], timeout=30) is True
    thread.join()


# SQLite does not tell queues apart: a wake is only a hint there.
@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_wait_for_work_ignores_other_queues_on_postgres(
    open_store: Callable[..., EventStore], queue: str, unique: Callable[[str], str]
) -> None:
    waiter, writer = open_store(), open_store()
    assert waiter.wait_for_work([queue], timeout=5) is True
    other, stream = unique("other"), unique("exec")
    enqueue(writer, stream, WorkItem(f"{other}/a", other, stream, "task", {}))
    assert waiter.wait_for_work([queue], timeout=0.5) is False


def worker(worker_id: str, **changes: object) -> WorkerRecord:
    record = WorkerRecord(
        id=worker_id,
        host="host-a",
        pid=123,
        queues=("tasks", "timers"),
        concurrency=4,
        started_at=datetime(2030, 1, 1, 11, 0, tzinfo=UTC),
        heartbeat_at=datetime(2000, 1, 1, tzinfo=UTC),  # replaced by the store's clock
        current=(),
    )
    return WorkerRecord(**{**record.__dict__, **changes})  # type: ignore[arg-type]


def test_workers_registry_upserts_lists_prunes_and_removes(
    store: EventStore, clock: FakeClock, unique: Callable[[str], str]
) -> None:
    a, b = unique("worker-a"), unique("worker-b")
    saved = store.save_worker(worker(a))
    assert saved.heartbeat_at == clock.now
    clock.advance(10)
    item = {"work": "x|task|1", "kind": "task", "execution": "m:e1", "state": "Build", "since": "t"}
    store.save_worker(worker(b, pid=456, current=(item,)))
    clock.advance(5)
    store.save_worker(worker(a, current=()))  # a heartbeat: same row, new time
    mine = {w.id: w for w in store.workers() if w.id in (a, b)}
    assert mine[a].heartbeat_at == clock.now and mine[a].queues == ("tasks", "timers")
    assert mine[b].pid == 456 and mine[b].current == (item,)
    assert mine[b].started_at == datetime(2030, 1, 1, 11, 0, tzinfo=UTC)

    clock.advance(60)
    store.prune_workers(timedelta(seconds=62))  # b is 65 s silent, a 60 s
    assert {w.id for w in store.workers()} & {a, b} == {a}
    store.remove_worker(a)
    store.remove_worker(a)  # removing twice is harmless
    assert {w.id for w in store.workers()} & {a, b} == set()
