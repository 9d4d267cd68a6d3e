"""The gates index stays cheap however many gates it has seen: its fold (the gates open now) is saved
as the stream's snapshot every ``SNAPSHOT_EVERY`` events, so a check reads the snapshot and at most
that many events after it, and still sees exactly the open gates. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from orchestrator.integrations.phabricator import gate_index, gates
from orchestrator.store import EventStore


@pytest.fixture
def store(database_url: str) -> Iterator[EventStore]:
    opened = EventStore.from_url(database_url, auto_upgrade=True)
    yield opened
    opened.close()


def gate(n: int) -> gates.Gate:
    return gates.Gate(f"release:run-{n:03}", f"token-{n:03}", "Approve", f"D{n}", ("carol",))


def test_a_long_history_is_read_from_the_snapshot_and_a_bounded_tail(store: EventStore) -> None:
    total = 3 * gate_index.SNAPSHOT_EVERY
    for n in range(total):
        gate_index.open_gate(store, gate(n), reconcile_seconds=60)
        if n % 10 == 3:
            gate_index.release_gate(store, gate(n), f"PHID-DIFF-{n}", "carol")
        elif n % 10 != 7:
            gate_index.close_gate(store, gate(n), "released")
    gate_index.close_gate(store, gate(13), "ended")  # a watch opened before the last snapshot, closed after

    index = gate_index.read_index(store)
    assert store.stream_version(gate_index.GATES_STREAM) > 5 * gate_index.SNAPSHOT_EVERY
    snapshot = store.load_snapshot(gate_index.GATES_STREAM)
    assert snapshot is not None
    assert index.read == store.stream_version(gate_index.GATES_STREAM) - snapshot.version
    assert index.read < gate_index.SNAPSHOT_EVERY
    assert [g.token for g in index.waiting] == [f"token-{n:03}" for n in range(total) if n % 10 == 7]
    assert [(w.gate.token, w.diff) for w in index.released] == [
        (f"token-{n:03}", f"PHID-DIFF-{n}") for n in range(total) if n % 10 == 3 and n != 13
    ]
    assert gate_index.open_gates(store) == index.waiting


def test_index_appends_are_idempotent_by_their_deterministic_ids(store: EventStore) -> None:
    gate_index.open_gate(store, gate(1), reconcile_seconds=60)
    gate_index.open_gate(store, gate(1), reconcile_seconds=60)  # the executor ran again after a crash
    gate_index.close_gate(store, gate(1), "released")
    gate_index.close_gate(store, gate(1), "gone")  # a second, concurrent look with another conclusion
    gate_index.open_gate(store, gate(1), reconcile_seconds=60)  # a late re-run does not reopen it
    records = store.read_stream(gate_index.GATES_STREAM)
    assert [(r.type, r.data.get("outcome")) for r in records] == [
        ("GateOpened", None),
        ("GateClosed", "released"),
    ]
    assert gate_index.read_index(store).waiting == []


def test_gates_opened_before_abort_on_new_diff_existed_still_read() -> None:
    data = gate(1).to_json()
    del data["abortOnNewDiff"]
    assert gates.Gate.from_json(data) == gate(1)
