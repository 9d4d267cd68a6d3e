"""Contract: snapshots are saved in the append's transaction; the latest one is kept."""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.store import EventStore, Snapshot

from .helpers import event


def test_snapshot_saved_with_the_append(store: EventStore, unique: Callable[[str], str]) -> None:
    stream = unique("exec")
    store.append(stream, 0, [event(), event()], snapshot=Snapshot(stream, 2, {"state": "Task", "n": [1, 2]}))
    assert store.load_snapshot(stream) == Snapshot(stream, 2, {"state": "Task", "n": [1, 2]})


def test_newer_snapshots_replace_older_ones_not_the_reverse(
    store: EventStore, unique: Callable[[str], str]
) -> None:
    stream = unique("exec")
    store.append(stream, 0, [event()], snapshot=Snapshot(stream, 1, {"v": 1}))
    store.append(stream, 1, [event(), event()], snapshot=Snapshot(stream, 3, {"v": 3}))
    store.append(stream, 3, [event()], snapshot=Snapshot(stream, 2, {"v": 2}))  # late and stale: ignored
    assert store.load_snapshot(stream) == Snapshot(stream, 3, {"v": 3})

    store.append(stream, 4, [], snapshot=Snapshot(stream, 4, {"v": 4}))  # a snapshot alone
    assert store.load_snapshot(stream) == Snapshot(stream, 4, {"v": 4})


def test_snapshots_are_not_bound_by_the_payload_limit(
    open_store: Callable[..., EventStore], unique: Callable[[str], str]
) -> None:
    store = open_store(payload_limit=100)
    stream = unique("exec")
    state = {"outputs": ["x" * 50] * 20}
    store.append(stream, 0, [event()], snapshot=Snapshot(stream, 1, state))
    loaded = store.load_snapshot(stream)
    assert loaded is not None
    assert loaded.state == state
