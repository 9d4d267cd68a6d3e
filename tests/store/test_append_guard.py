"""Guarded appends, on SQLite and PostgreSQL: "commit only if stream G is still at version V".

``EventStore.append(..., guard=(G, V))`` checks G's version in the append's transaction, under the
append lock; when G is elsewhere it raises ``StreamMoved`` and writes nothing: no events, no work
items, no completions, no snapshot.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import psycopg
import pytest

from orchestrator.store import (
    ConcurrencyError,
    DuplicateEventId,
    EventStore,
    InvalidAppend,
    NewEvent,
    Snapshot,
    StoreError,
    StreamMoved,
    WorkItem,
)

from .helpers import event

V1 = "SELECT orchestrator_append_v1(%s, 0, now(), %s::json, NULL, '{}'::text[], '[]'::json, NULL, NULL)"
V4 = (
    "SELECT orchestrator_append_v4(%s, %s, now(), %s::json, NULL, '{}'::text[], '[]'::json, NULL, NULL, "
    "%s, %s)"
)


def test_a_guarded_append_commits_when_the_guard_stream_is_at_its_version(
    store: EventStore, unique: Callable[[str], str]
) -> None:
    guard, stream = unique("statemachine"), unique("execution")
    store.append(guard, 0, [event(), event()])

    recorded = store.append(stream, 0, [event(), event()], guard=(guard, 2))

    assert [e.version for e in recorded] == [1, 2]
    assert store.read_stream(stream) == recorded
    assert store.stream_version(guard) == 2  # the guard stream is only read


def test_a_guard_on_a_missing_stream_means_version_0(store: EventStore, unique: Callable[[str], str]) -> None:
    missing, stream = unique("statemachine"), unique("execution")

    with pytest.raises(StreamMoved) as refused:
        store.append(stream, 0, [event()], guard=(missing, 1))
    assert (refused.value.expected_version, refused.value.actual_version) == (1, 0)

    recorded = store.append(stream, 0, [event()], guard=(missing, 0))
    assert [e.version for e in recorded] == [1]


def test_a_failed_guard_writes_nothing_and_says_which_stream_moved(
    open_store: Callable[..., EventStore], unique: Callable[[str], str]
) -> None:
    store = open_store()
    guard, stream, queue = unique("statemachine"), unique("execution"), unique("queue")
    store.append(guard, 0, [event()])
    # A work item leased by a worker, which the refused append would have completed.
    store.append(stream, 0, [event()], enqueue=[WorkItem(unique("held"), queue, stream, "task", {})])
    [held] = store.claim("w1", [queue], 1, 60)
    store.append(guard, 1, [event()])  # another process moves the guard stream on

    new_item = WorkItem(unique("new"), queue, stream, "task", {"n": 1})
    with pytest.raises(StreamMoved) as refused:
        store.append(
            stream,
            1,
            [event(), event()],
            enqueue=[new_item],
            complete=[held.id],
            worker_id="w1",
            snapshot=Snapshot(stream, 3, {"s": 1}),
            guard=(guard, 1),
        )

    error = refused.value
    assert isinstance(error, StoreError) and not isinstance(error, ConcurrencyError)
    assert (error.stream_id, error.guard_stream) == (stream, guard)
    assert (error.expected_version, error.actual_version) == (1, 2)
    assert guard in str(error) and "version 2" in str(error) and "nothing was written" in str(error)
    assert store.stream_version(stream) == 1  # no events
    assert store.load_snapshot(stream) is None  # no snapshot
    assert store.renew("w1", [held.id], 60) == [held.id]  # not completed: still leased
    depth = store.queue_depths([queue])[queue]
    assert (depth.ready, depth.leased) == (0, 1)  # the new item was not enqueued
    assert store.claim("w2", [queue], 10, 60) == []

    # Another process's view of the same database agrees.
    other = open_store()
    assert other.stream_version(stream) == 1
    # Decided again on the current guard stream, it commits, completion and all.
    store.append(stream, 1, [event()], complete=[held.id], worker_id="w1", guard=(guard, 2))
    assert store.renew("w1", [held.id], 60) == []


def test_the_guard_is_checked_before_the_stream_version(
    store: EventStore, unique: Callable[[str], str]
) -> None:
    """A stale guard and a stale expected version: the guard failure is what is reported (the
    caller must refresh what it decided from first), not a ConcurrencyError."""
    guard, stream = unique("statemachine"), unique("execution")
    store.append(guard, 0, [event()])
    store.append(stream, 0, [event()])
    with pytest.raises(StreamMoved):
        store.append(stream, 0, [event()], guard=(guard, 0))
    with pytest.raises(ConcurrencyError):
        store.append(stream, 0, [event()], guard=(guard, 1))


def test_a_failed_guard_is_not_replayed_or_misreported_as_a_duplicate(
    store: EventStore, unique: Callable[[str], str]
) -> None:
    guard, stream = unique("statemachine"), unique("execution")
    shared = uuid.uuid4()
    store.append(stream, 0, [NewEvent(shared, "Started", {"version": 1})])
    store.append(guard, 0, [event()])
    # Same id, other data: unguarded, this is a DuplicateEventId; with a failed guard, the guard.
    with pytest.raises(StreamMoved):
        store.append(stream, 0, [NewEvent(shared, "Started", {"version": 2})], guard=(guard, 0))
    with pytest.raises(DuplicateEventId):
        store.append(stream, 0, [NewEvent(shared, "Started", {"version": 2})], guard=(guard, 1))


def test_the_retry_of_a_guarded_append_that_committed_is_replayed(
    store: EventStore, unique: Callable[[str], str]
) -> None:
    """A retry after a lost acknowledgement: the events are stored, identically, so the append is
    answered with them even though the guard stream moved since it committed."""
    guard, stream = unique("statemachine"), unique("execution")
    events = [event(), event()]
    recorded = store.append(stream, 0, events, guard=(guard, 0))
    store.append(guard, 0, [event()])

    assert store.append(stream, 0, events, guard=(guard, 0)) == recorded
    assert store.stream_version(stream) == 2


@pytest.mark.parametrize(
    ("guard", "message"),
    [
        (("", 0), "non-empty string"),
        (("g", -1), "integer >= 0"),
        (("g", True), "integer >= 0"),
        (("g", "1"), "integer >= 0"),
        (("g",), "pair"),
        (["g", 1], "pair"),
        (("s", 0), "appended stream itself"),
    ],
)
def test_a_malformed_guard_is_refused_before_any_io(store: EventStore, guard: object, message: str) -> None:
    with pytest.raises(InvalidAppend, match=message):
        store.append("s", 0, [event()], guard=guard)  # type: ignore[arg-type]
    assert store.stream_version("s") == 0


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_postgres_checks_the_guard_after_waiting_for_the_append_lock(
    store: EventStore, store_url: str, unique: Callable[[str], str]
) -> None:
    """An append to the guard stream in its insert-to-commit window (holding the append lock) when
    the guarded append arrives: the guard is checked once that one committed, and sees it."""
    guard, stream = unique("statemachine"), unique("execution")
    conninfo = store_url.replace("postgresql+psycopg://", "postgresql://")
    inserted = threading.Event()
    document = f'[{{"id": "{uuid.uuid4()}", "type": "T", "data": {{}}, "metadata": {{}}}}]'

    def move_the_guard_stream() -> None:
        with psycopg.connect(conninfo, autocommit=True) as connection, connection.transaction():
            connection.execute(V1, (guard, document))
            inserted.set()
            time.sleep(0.3)

    mover = threading.Thread(target=move_the_guard_stream)
    mover.start()
    try:
        assert inserted.wait(10), "the other append did not start"
        with pytest.raises(StreamMoved) as refused:
            store.append(stream, 0, [event()], guard=(guard, 0))
    finally:
        mover.join()
    assert refused.value.actual_version == 1
    assert store.stream_version(stream) == 0
    # After waiting for the lock, a guarded append that passes is durable and in order.
    recorded = store.append(stream, 0, [event()], guard=(guard, 1))
    assert recorded[0].position == store.last_position()


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_postgres_v4_keeps_the_commit_convention_of_v3(
    store: EventStore, store_url: str, unique: Callable[[str], str]
) -> None:
    """Synchronous with a free lock (the first position), asynchronous and negated when it waited;
    an append of no events with a guard takes the lock (to check the guard) and returns 0."""
    guard, stream = unique("statemachine"), unique("execution")
    conninfo = store_url.replace("postgresql+psycopg://", "postgresql://")
    document = '[{"id": "%s", "type": "T", "data": {}, "metadata": {}}]'
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with psycopg.connect(conninfo, autocommit=True) as connection, connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(1330791240, 1)")
            taken.set()
            release.wait(10)

    with psycopg.connect(conninfo, autocommit=True) as server:
        free = server.execute(V4, (stream, 0, document % uuid.uuid4(), guard, 0)).fetchone()
        assert free is not None and free[0] > 0
        holder = threading.Thread(target=hold)
        holder.start()
        try:
            assert taken.wait(10)
            threading.Timer(0.2, release.set).start()
            waited = server.execute(V4, (stream, 1, document % uuid.uuid4(), guard, 0)).fetchone()
        finally:
            release.set()
            holder.join()
        assert waited == (-(free[0] + 1),)
        assert server.execute(V4, (stream, 2, "[]", guard, 0)).fetchone() == (0,)
        with pytest.raises(psycopg.Error) as refused:
            server.execute(V4, (stream, 2, "[]", guard, 1))
        assert (refused.value.sqlstate, refused.value.diag.message_detail) == ("OR003", "0")
    assert store.stream_version(stream) == 2
