"""Contract: the durable work queue and timers, and the completion fence (both backends)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest

from orchestrator.store import ClaimedWork, EventStore, LeaseLost, Snapshot, WorkItem

from .helpers import FakeClock, event


@pytest.fixture
def store(open_store: Callable[..., EventStore], clock: FakeClock) -> EventStore:
    """A store on the clock the test moves."""
    return open_store(clock=clock)


@pytest.fixture
def queue(unique: Callable[[str], str]) -> str:
    """A queue of this test only; work ids are prefixed with it (``q("a")``) to be unique too."""
    return unique("queue")


@pytest.fixture
def q(queue: str) -> Callable[[str], str]:
    """The id of this test's work item ``name``."""
    return lambda name: f"{queue}/{name}"


def enqueue(store: EventStore, stream: str, *items: WorkItem) -> None:
    store.append(stream, store.stream_version(stream), [event()], enqueue=list(items))


def test_claim_takes_due_items_in_run_at_order(
    store: EventStore, q: Callable[[str], str], clock: FakeClock, queue: str, unique: Callable[[str], str]
) -> None:
    stream = unique("exec")
    later, soon = clock.now + timedelta(seconds=20), clock.now + timedelta(seconds=10)
    enqueue(
        store,
        stream,
        WorkItem(q("now-b"), queue, stream, "task", {"n": 2}),
        WorkItem(q("timer-late"), queue, stream, "timer", {"n": 4}, run_at=later),
        WorkItem(q("timer-soon"), queue, stream, "timer", {"n": 3}, run_at=soon),
        WorkItem(q("past-a"), queue, stream, "task", {"n": 1}, run_at=clock.now - timedelta(seconds=5)),
    )

    first = store.claim("w1", [queue], 10, 30)
    assert [w.id for w in first] == [q("past-a"), q("now-b")]
    assert first[0] == ClaimedWork(
        q("past-a"),
        queue,
        stream,
        "task",
        {"n": 1},
        clock.now - timedelta(seconds=5),
        1,
        clock.now + timedelta(seconds=30),
    )
    assert first[1].run_at == clock.now  # run_at None: due at once

    assert store.claim("w1", [queue], 10, 30, now=soon) == [
        ClaimedWork(q("timer-soon"), queue, stream, "timer", {"n": 3}, soon, 1, soon + timedelta(seconds=30))
    ]
    clock.advance(25)
    assert [w.id for w in store.claim("w1", [queue], 10, 30)] == [q("timer-late")]


def test_claim_respects_limit_and_queues(store: EventStore, queue: str, unique: Callable[[str], str]) -> None:
    stream, other = unique("exec"), unique("queue")
    enqueue(store, stream, *(WorkItem(f"{queue}-{i}", queue, stream, "task", {}) for i in range(5)))
    enqueue(store, stream, WorkItem(unique("elsewhere"), other, stream, "task", {}))

    assert len(store.claim("w", [queue], 2, 30)) == 2
    assert len(store.claim("w", [queue], 10, 30)) == 3
    assert store.claim("w", [queue], 10, 30) == []
    assert [w.queue for w in store.claim("w", [queue, other], 10, 30)] == [other]


def test_duplicate_work_ids_are_ignored_even_after_completion(
    store: EventStore, queue: str, unique: Callable[[str], str]
) -> None:
    stream, work_id = unique("exec"), unique("work")
    enqueue(
        store,
        stream,
        WorkItem(work_id, queue, stream, "task", {"v": 1}),
        WorkItem(work_id, queue, stream, "x", {}),
    )
    enqueue(store, stream, WorkItem(work_id, queue, stream, "task", {"v": 2}))

    (claimed,) = store.claim("w", [queue], 10, 30)
    assert (claimed.kind, claimed.payload) == ("task", {"v": 1})
    store.append(stream, store.stream_version(stream), [event()], complete=[work_id], worker_id="w")

    enqueue(store, stream, WorkItem(work_id, queue, stream, "task", {"v": 3}))
    assert store.claim("w", [queue], 10, 30) == []


def test_leased_items_wait_for_the_lease_to_expire(
    store: EventStore, q: Callable[[str], str], clock: FakeClock, queue: str, unique: Callable[[str], str]
) -> None:
    stream = unique("exec")
    enqueue(store, stream, WorkItem(q("a"), queue, stream, "task", {}))
    assert [w.attempts for w in store.claim("w1", [queue], 10, 30)] == [1]

    assert store.claim("w2", [queue], 10, 30) == []
    clock.advance(29.9)
    assert store.claim("w2", [queue], 10, 30) == []
    clock.advance(0.1)
    (again,) = store.claim("w2", [queue], 10, 30)
    assert (again.id, again.attempts) == (q("a"), 2)


def test_renew_extends_only_leases_still_held(
    store: EventStore, q: Callable[[str], str], clock: FakeClock, queue: str, unique: Callable[[str], str]
) -> None:
    stream = unique("exec")
    enqueue(store, stream, *(WorkItem(i, queue, stream, "task", {}) for i in (q("a"), q("b"), q("c"))))
    store.claim("w1", [queue], 2, 30)  # a, b
    store.claim("w2", [queue], 1, 30)  # c

    clock.advance(20)
    assert store.renew("w1", [q("a"), q("b"), q("c"), q("unknown")], 30) == [q("a"), q("b")]
    clock.advance(20)  # 40 s after the claim: renewed leases hold until 50 s
    assert store.claim("w3", [queue], 10, 30) == [
        ClaimedWork(
            q("c"),
            queue,
            stream,
            "task",
            {},
            clock.now - timedelta(seconds=40),
            2,
            clock.now + timedelta(seconds=30),
        )
    ]
    assert store.renew("w2", [q("c")], 30) == []  # lost to w3
    clock.advance(11)
    assert store.renew("w1", [q("a"), q("b")], 30) == []  # expired
    assert store.renew("w1", [], 30) == []


def test_release_makes_items_ready_again(
    store: EventStore, q: Callable[[str], str], queue: str, unique: Callable[[str], str]
) -> None:
    stream = unique("exec")
    enqueue(
        store,
        stream,
        WorkItem(q("a"), queue, stream, "task", {}),
        WorkItem(q("b"), queue, stream, "task", {}),
    )
    store.claim("w1", [queue], 10, 30)

    store.release("w2", [q("a"), q("b")])  # not w2's to release
    assert store.claim("w2", [queue], 10, 30) == []
    store.release("w1", [q("a")])
    assert [w.id for w in store.claim("w2", [queue], 10, 30)] == [q("a")]
    store.release("w1", [])


def test_completing_in_an_append_finishes_the_work(
    store: EventStore, q: Callable[[str], str], queue: str, unique: Callable[[str], str]
) -> None:
    stream = unique("exec")
    enqueue(
        store,
        stream,
        WorkItem(q("a"), queue, stream, "task", {}),
        WorkItem(q("b"), queue, stream, "task", {}),
    )
    claimed = store.claim("w1", [queue], 10, 30)

    recorded = store.append(
        stream,
        1,
        [event("TaskSucceeded")],
        complete=[w.id for w in claimed],
        worker_id="w1",
        enqueue=[WorkItem(q("next"), queue, stream, "task", {})],
        snapshot=Snapshot(stream, 2, {"state": "Next"}),
    )

    assert [e.version for e in recorded] == [2]
    assert store.renew("w1", [q("a"), q("b")], 30) == []
    assert [w.id for w in store.claim("w2", [queue], 10, 30)] == [q("next")]
    assert store.load_snapshot(stream) == Snapshot(stream, 2, {"state": "Next"})


@pytest.mark.parametrize(
    "how", ["expired", "claimed by another", "released", "completed", "never claimed", "unknown"]
)
def test_a_lost_lease_fails_the_whole_append(
    store: EventStore,
    q: Callable[[str], str],
    clock: FakeClock,
    queue: str,
    unique: Callable[[str], str],
    how: str,
) -> None:
    stream = unique("exec")
    enqueue(
        store,
        stream,
        WorkItem(q("a"), queue, stream, "task", {}),
        WorkItem(q("b"), queue, stream, "task", {}),
    )
    if how != "never claimed":
        store.claim("w1", [queue], 1, 30)  # a
    if how == "expired":
        clock.advance(30)
    elif how == "claimed by another":
        clock.advance(31)
        store.claim("w2", [queue], 1, 30)
    elif how == "released":
        store.release("w1", [q("a")])
    elif how == "completed":
        store.append(stream, 1, [], complete=[q("a")], worker_id="w1")
    lost = q("zzz") if how == "unknown" else q("a")
    before = store.last_position()

    with pytest.raises(LeaseLost) as raised:
        store.append(
            stream,
            1,
            [event("TaskSucceeded")],
            complete=[lost],
            worker_id="w1",
            enqueue=[WorkItem(q("next"), queue, stream, "task", {})],
            snapshot=Snapshot(stream, 2, {}),
        )

    assert raised.value.work_ids == (lost,)
    assert raised.value.worker_id == "w1"
    assert "'w1'" in str(raised.value)
    assert repr(lost) in str(raised.value)
    assert store.stream_version(stream) == 1
    assert store.last_position() == before
    assert store.load_snapshot(stream) is None
    assert {w.id for w in store.claim("w3", [queue], 10, 30, now=clock.now + timedelta(hours=1))} <= {
        q("a"),
        q("b"),
    }


def test_the_fence_lets_only_the_current_lease_holder_complete(
    store: EventStore, q: Callable[[str], str], clock: FakeClock, queue: str, unique: Callable[[str], str]
) -> None:
    stream = unique("exec")
    enqueue(store, stream, WorkItem(q("task-1"), queue, stream, "task", {}))
    store.claim("slow-worker", [queue], 1, 30)
    clock.advance(45)  # the slow worker stalls past its lease; another takes over
    store.claim("fast-worker", [queue], 1, 30)

    store.append(stream, 1, [event("TaskSucceeded")], complete=[q("task-1")], worker_id="fast-worker")
    with pytest.raises(LeaseLost):
        store.append(stream, 2, [event("TaskSucceeded")], complete=[q("task-1")], worker_id="slow-worker")
    assert [e.type for e in store.read_stream(stream)] == ["TaskScheduled", "TaskSucceeded"]


def test_concurrent_claimers_never_share_an_item(
    open_store: Callable[..., EventStore], queue: str, unique: Callable[[str], str]
) -> None:
    store = open_store()
    stream = unique("exec")
    items = [WorkItem(f"{queue}-{i:03}", queue, stream, "task", {}) for i in range(120)]
    for start in range(0, len(items), 40):
        store.append(stream, store.stream_version(stream), [event()], enqueue=items[start : start + 40])
    claims: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def claimer(worker: str) -> None:
        try:
            mine = claims.setdefault(worker, [])
            while batch := store.claim(worker, [queue], 3, 60):
                mine.extend(w.id for w in batch)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    claimed = [work_id for ids in claims.values() for work_id in ids]
    assert sorted(claimed) == [w.id for w in items]
