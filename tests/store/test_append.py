"""Contract: appending and reading streams (both backends)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from orchestrator.store import (
    ConcurrencyError,
    DuplicateEventId,
    EventStore,
    InvalidAppend,
    NewEvent,
    Snapshot,
    WorkItem,
)

from .helpers import FakeClock, event


def test_append_records_versions_positions_and_time(
    open_store: Callable[..., EventStore], clock: FakeClock, unique: Callable[[str], str]
) -> None:
    store = open_store(clock=clock)
    stream = unique("exec")
    start = store.last_position()
    new = [event("ExecutionStarted", input={"a": 1}), event("TaskStateEntered"), event("TaskScheduled")]

    recorded = store.append(stream, 0, new)

    assert [(e.stream_id, e.version, e.position) for e in recorded] == [
        (stream, 1, start + 1),
        (stream, 2, start + 2),
        (stream, 3, start + 3),
    ]
    assert [(e.id, e.type, e.data, e.metadata) for e in recorded] == [
        (n.id, n.type, n.data, n.metadata) for n in new
    ]
    assert {e.recorded_at for e in recorded} == {clock.now}
    assert store.read_stream(stream) == recorded
    assert store.stream_version(stream) == 3
    assert store.last_position() == start + 3


def test_appends_continue_the_stream(store: EventStore, unique: Callable[[str], str]) -> None:
    stream = unique("exec")
    first = store.append(stream, 0, [event(), event()])
    second = store.append(stream, 2, [event()])

    assert [e.version for e in store.read_stream(stream)] == [1, 2, 3]
    assert store.read_stream(stream) == first + second
    assert store.read_stream(stream, from_version=2) == first[1:] + second
    assert store.read_stream(stream, from_version=2, limit=1) == first[1:]
    assert store.read_stream(stream, from_version=4) == []


def test_unknown_stream_is_empty_at_version_zero(store: EventStore, unique: Callable[[str], str]) -> None:
    stream = unique("nothing")
    assert store.stream_version(stream) == 0
    assert store.read_stream(stream) == []
    assert store.load_snapshot(stream) is None


PAYLOADS: list[dict[str, Any]] = [
    {},
    {"text": "héllo wörld ✓ 日本語 \U0001f600", "quote": 'a"b\\c\n\t', "empty": ""},
    {"int": 2**62, "negative": -7, "float": 0.1, "exp": 1e300, "bool": True, "none": None},
    {"nested": {"list": [1, [2, [3, {"deep": []}]]], "obj": {"k": {"k": {"k": "v"}}}}},
    {"z": 1, "a": 2, "m": 3},  # key order is kept
]


@pytest.mark.parametrize("data", PAYLOADS)
def test_payloads_round_trip_exactly(
    store: EventStore, unique: Callable[[str], str], data: dict[str, Any]
) -> None:
    stream = unique("payload")
    metadata = {"causation_id": str(uuid.uuid4()), "correlation_id": "c", "actor": "ü"}
    store.append(stream, 0, [NewEvent(uuid.uuid4(), "T", data, metadata)])

    (stored,) = store.read_stream(stream)
    assert stored.data == data
    assert list(stored.data) == list(data)
    assert stored.metadata == metadata
    assert stored.recorded_at.utcoffset() is not None


def test_stale_expected_version_raises_and_writes_nothing(
    open_store: Callable[..., EventStore], clock: FakeClock, unique: Callable[[str], str]
) -> None:
    store = open_store(clock=clock)
    stream, queue, worker = unique("exec"), unique("queue"), unique("worker")
    store.append(stream, 0, [event()], enqueue=[WorkItem(unique("w"), queue, stream, "task", {})])
    (claimed,) = store.claim(worker, [queue], 1, 60)
    before = store.last_position()

    with pytest.raises(ConcurrencyError) as raised:
        store.append(
            stream,
            0,
            [event(), event()],
            enqueue=[WorkItem(unique("w"), queue, stream, "task", {})],
            complete=[claimed.id],
            worker_id=worker,
            snapshot=Snapshot(stream, 2, {"s": 1}),
        )

    error = raised.value
    assert (error.stream_id, error.expected_version, error.actual_version) == (stream, 0, 1)
    assert repr(stream) in str(error)
    assert "version 1" in str(error)
    assert "expected version 0" in str(error)
    # Nothing of it was written: no events, no work, no completion, no snapshot.
    assert store.stream_version(stream) == 1
    assert store.last_position() == before
    assert store.claim(unique("other"), [queue], 10, 60) == []
    assert store.renew(worker, [claimed.id], 60) == [claimed.id]
    assert store.load_snapshot(stream) is None


def test_expected_version_ahead_of_the_stream_is_a_conflict(
    store: EventStore, unique: Callable[[str], str]
) -> None:
    stream = unique("exec")
    store.append(stream, 0, [event()])
    with pytest.raises(ConcurrencyError) as raised:
        store.append(stream, 5, [event()])
    assert (raised.value.expected_version, raised.value.actual_version) == (5, 1)
    assert store.stream_version(stream) == 1


def test_empty_append_still_checks_the_version(store: EventStore, unique: Callable[[str], str]) -> None:
    stream = unique("exec")
    assert store.append(stream, 0, []) == []
    store.append(stream, 0, [event()])
    assert store.append(stream, 1, []) == []
    with pytest.raises(ConcurrencyError):
        store.append(stream, 0, [])


def test_reappending_the_same_events_returns_the_stored_records(
    open_store: Callable[..., EventStore], clock: FakeClock, unique: Callable[[str], str]
) -> None:
    store = open_store(clock=clock)
    stream = unique("exec")
    new = [event("A", x=[1, 2]), event("B", y={"z": None})]
    recorded = store.append(stream, 0, new)
    clock.advance(60)

    # A retry after a lost reply: same events, same expected version.
    assert store.append(stream, 0, new) == recorded
    # Equal copies (not the same objects) are the same events too.
    copies = [NewEvent(e.id, e.type, dict(e.data), dict(e.metadata)) for e in new]
    assert store.append(stream, 0, copies) == recorded
    # Even with the stream's current version: the ids are the idempotency key.
    assert store.append(stream, 2, new) == recorded

    assert store.read_stream(stream) == recorded
    assert store.stream_version(stream) == 2


def test_reappending_after_the_stream_moved_on_is_still_a_no_op(
    store: EventStore, unique: Callable[[str], str]
) -> None:
    stream = unique("exec")
    new = [event()]
    recorded = store.append(stream, 0, new)
    store.append(stream, 1, [event()])
    assert store.append(stream, 0, new) == recorded
    assert store.stream_version(stream) == 2


def test_stored_ids_with_other_content_are_rejected(store: EventStore, unique: Callable[[str], str]) -> None:
    stream = unique("exec")
    original = event("A", x=1)
    store.append(stream, 0, [original])

    changed = NewEvent(original.id, "A", {"x": 2}, original.metadata)
    with pytest.raises(DuplicateEventId, match=str(original.id)):
        store.append(stream, 0, [changed])
    with pytest.raises(DuplicateEventId, match="nothing was written"):
        store.append(stream, 1, [changed])

    # Some stored, some new: not a repetition either; the new one is not written.
    fresh = event("B")
    with pytest.raises(DuplicateEventId):
        store.append(stream, 1, [fresh, original])
    assert store.read_stream(stream)[-1].id == original.id
    assert store.stream_version(stream) == 1


def test_the_same_id_may_be_used_in_another_stream(store: EventStore, unique: Callable[[str], str]) -> None:
    shared = event()
    first = store.append(unique("a"), 0, [shared])
    second = store.append(unique("b"), 0, [shared])
    assert first[0].id == second[0].id
    assert first[0].position != second[0].position


def test_all_events_of_an_append_commit_together(store: EventStore, unique: Callable[[str], str]) -> None:
    stream = unique("exec")
    stored = event()
    store.append(stream, 0, [stored])
    before = store.last_position()

    # The database rejects the second event (its id is stored at version 1): the first is not kept.
    with pytest.raises(DuplicateEventId):
        store.append(stream, 1, [event(), stored])

    assert store.stream_version(stream) == 1
    assert store.last_position() == before


@pytest.mark.parametrize(
    ("stream_id", "expected_version", "events", "message"),
    [
        ("", 0, [], "stream_id"),
        ("s", -1, [], "expected_version"),
        ("s", True, [], "expected_version"),
        ("s", 0, [NewEvent(uuid.uuid4(), "", {})], "non-empty type"),
        ("s", 0, [NewEvent("not-a-uuid", "T", {})], "uuid.UUID"),  # type: ignore[arg-type]
        ("s", 0, [NewEvent(uuid.uuid4(), "T", {"s": {1, 2}})], "not JSON"),
        ("s", 0, [NewEvent(uuid.uuid4(), "T", {"x": float("nan")})], "not JSON"),
        ("s", 0, [NewEvent(uuid.uuid4(), "T", {}, {"at": object()})], "not JSON"),
        ("s", 0, [NewEvent(uuid.UUID(int=1), "T", {}), NewEvent(uuid.UUID(int=1), "U", {})], "distinct ids"),
    ],
)
def test_bad_arguments_are_rejected_before_writing(
    store: EventStore,
    unique: Callable[[str], str],
    stream_id: str,
    expected_version: int,
    events: list[NewEvent],
    message: str,
) -> None:
    stream = unique(stream_id) if stream_id else stream_id
    before = store.last_position()
    with pytest.raises(InvalidAppend, match=message):
        store.append(stream, expected_version, events)
    assert store.last_position() == before


def test_bad_snapshots_and_completions_are_rejected(store: EventStore, unique: Callable[[str], str]) -> None:
    stream = unique("exec")
    with pytest.raises(InvalidAppend, match="cannot be saved with"):
        store.append(stream, 0, [event()], snapshot=Snapshot(unique("other"), 1, {}))
    with pytest.raises(InvalidAppend, match="new version 1"):
        store.append(stream, 0, [event()], snapshot=Snapshot(stream, 2, {}))
    with pytest.raises(InvalidAppend, match="worker_id"):
        store.append(stream, 0, [event()], complete=["w"])
    naive = WorkItem(unique("w"), unique("q"), stream, "timer", {}, run_at=datetime(2030, 1, 1))
    with pytest.raises(InvalidAppend, match="timezone-aware"):
        store.append(stream, 0, [event()], enqueue=[naive])
    assert store.stream_version(stream) == 0
