"""Contract: a claim can carry its items' stream histories (both backends)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from orchestrator.store import EventStore, WorkItem

from .helpers import FakeClock, event


@pytest.fixture
def store(open_store: Callable[..., EventStore], clock: FakeClock) -> EventStore:
    return open_store(clock=clock)


def fields(records: object) -> list[tuple[object, ...]]:
    """Every field of recorded events, to compare them in full."""
    assert isinstance(records, (list, tuple))
    return [
        (r.stream_id, r.version, r.position, r.id, r.type, r.data, r.metadata, r.recorded_at) for r in records
    ]


def test_each_item_comes_with_its_stream_as_read_stream_gives_it(
    store: EventStore, unique: Callable[[str], str], clock: FakeClock
) -> None:
    queue, short, other = unique("queue"), unique("short"), unique("other")
    data = {"text": "ünïcode ✓", "big": 2**53 + 1, "float": 0.1, "nested": {"list": [1, None, True]}}
    store.append(short, 0, [event("ExecutionStarted", **data), event()])
    clock.advance(1.5)
    store.append(
        short, 2, [event("TaskScheduled")], enqueue=[WorkItem(f"{queue}/a", queue, short, "task", {})]
    )
    store.append(other, 0, [event()], enqueue=[WorkItem(f"{queue}/b", queue, other, "task", {})])

    claimed = {work.id: work for work in store.claim("w", [queue], 10, 30, history_limit=3)}

    assert fields(claimed[f"{queue}/a"].history) == fields(store.read_stream(short))
    assert fields(claimed[f"{queue}/b"].history) == fields(store.read_stream(other))
    history = claimed[f"{queue}/a"].history
    assert history is not None and history[0].data == data


def test_a_stream_longer_than_the_limit_comes_without_history(
    store: EventStore, unique: Callable[[str], str]
) -> None:
    queue, long, exact = unique("queue"), unique("long"), unique("exact")
    store.append(
        long, 0, [event() for _ in range(4)], enqueue=[WorkItem(f"{queue}/l", queue, long, "task", {})]
    )
    store.append(
        exact, 0, [event() for _ in range(3)], enqueue=[WorkItem(f"{queue}/e", queue, exact, "task", {})]
    )

    claimed = {work.id: work for work in store.claim("w", [queue], 10, 30, history_limit=3)}

    assert claimed[f"{queue}/l"].history is None
    assert claimed[f"{queue}/e"].history is not None
    assert len(claimed[f"{queue}/e"].history) == 3


def test_without_a_limit_no_history_is_read(store: EventStore, unique: Callable[[str], str]) -> None:
    queue, stream = unique("queue"), unique("stream")
    store.append(stream, 0, [event()], enqueue=[WorkItem(f"{queue}/a", queue, stream, "task", {})])

    (work,) = store.claim("w", [queue], 10, 30)

    assert work.history is None


def test_a_reclaimed_item_comes_with_the_events_appended_since(
    store: EventStore, unique: Callable[[str], str], clock: FakeClock
) -> None:
    queue, stream = unique("queue"), unique("stream")
    store.append(stream, 0, [event()], enqueue=[WorkItem(f"{queue}/a", queue, stream, "task", {})])
    (first,) = store.claim("w1", [queue], 1, 5, history_limit=10)
    store.append(stream, 1, [event("TaskStarted")])
    clock.now += timedelta(seconds=6)  # the first lease expires

    (again,) = store.claim("w2", [queue], 1, 5, history_limit=10)

    assert first.history is not None and again.history is not None
    assert [e.version for e in first.history] == [1]
    assert [e.type for e in again.history] == ["TaskScheduled", "TaskStarted"]
    assert again.attempts == 2


def test_a_negative_limit_is_refused(store: EventStore) -> None:
    with pytest.raises(ValueError, match="history_limit"):
        store.claim("w", ["q"], 1, 30, history_limit=-1)
