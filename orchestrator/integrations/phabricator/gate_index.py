"""The gates index: one stream, ``phabricator-gates``, folded into the gates open now.

``GateOpened`` puts a gate in (with a work item that checks its revision at once and the next
reconcile round), ``GateReleased`` keeps a released gate *watched* for a new diff while its execution
runs (:mod:`.gate_answers`), ``GateClosed`` takes it out. Every event id is deterministic, so writing
the same fact twice (an executor re-run after a crash, two concurrent looks) is harmless, and a gate
closed once is never reopened by a late ``GateOpened``.

The cost of reading the index stays bounded by saving its fold as the stream's snapshot every
:data:`SNAPSHOT_EVERY` events (``EventStore.append(snapshot=...)``), so a check reads the snapshot
(the open gates only) and at most that many events after it.

Reconcile rounds fall on multiples of ``[phabricator] reconcile_seconds`` (:func:`next_bucket`), with
one work item per round whoever enqueues it (:func:`reconcile_item`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from orchestrator.errors import UsageError
from orchestrator.integrations.phabricator.gates import Gate
from orchestrator.integrations.phabricator.inbox import CHECK, QUEUE, RECONCILE, event_id, work_item
from orchestrator.store import ConcurrencyError, DuplicateEventId, EventStore, NewEvent, Snapshot, WorkItem

GATES_STREAM = "phabricator-gates"
RECONCILE_STREAM = "phabricator-reconcile"
SNAPSHOT_EVERY = 64
"""Events of the index stream between two snapshots of its fold: the most a check reads past one."""


@dataclass(frozen=True)
class Released:
    """A released gate watched while its execution runs: ``diff`` is the one ``approver`` approved."""

    gate: Gate
    diff: str | None
    approver: str


@dataclass(frozen=True)
class Index:
    """The gates open as of ``version`` of the index stream."""

    version: int
    waiting: list[Gate]
    released: list[Released]
    state: dict[str, Any]
    """The fold itself (what a snapshot saves): ``{"gates": {key: {"gate": ..., "released": ...}}}``."""
    read: int
    """How many events past the snapshot were read to build it."""


def _key(execution: str, token: str) -> str:
    return f"{execution}|{token}"


def _fold(state: dict[str, Any], kind: str, data: dict[str, Any]) -> None:
    gates = state.setdefault("gates", {})
    key = _key(str(data.get("execution")), str(data.get("token")))
    if kind == "GateOpened":
        gates.setdefault(key, {"gate": dict(data), "released": None})
    elif kind == "GateReleased" and key in gates:
        gates[key]["released"] = {"diff": data.get("diff"), "approver": data.get("approver")}
    elif kind == "GateClosed":
        gates.pop(key, None)


def read_index(store: EventStore) -> Index:
    """The open gates: the latest snapshot of the index and the events after it."""
    snapshot = store.load_snapshot(GATES_STREAM)
    state: dict[str, Any] = {"gates": {}}
    version = 0
    if snapshot is not None:
        state, version = {"gates": dict(snapshot.state.get("gates") or {})}, snapshot.version
    records = store.read_stream(GATES_STREAM, from_version=version + 1)
    for record in records:
        _fold(state, record.type, dict(record.data))
        version = record.version
    waiting: list[Gate] = []
    released: list[Released] = []
    for entry in state["gates"].values():
        gate = Gate.from_json(entry["gate"])
        if entry.get("released") is None:
            waiting.append(gate)
        else:
            released.append(Released(gate, entry["released"].get("diff"), str(entry["released"]["approver"])))
    return Index(version, waiting, released, state, len(records))


def open_gates(store: EventStore) -> list[Gate]:
    """The gates waiting for their approval, oldest first."""
    return read_index(store).waiting


def open_gate(store: EventStore, gate: Gate, *, reconcile_seconds: float) -> None:
    """Write ``gate`` into the index with a check of its revision now and the next reconcile round."""
    work = [
        work_item(GATES_STREAM, CHECK, {"base": f"{CHECK}|{gate.execution}|{gate.token}", **gate.to_json()}),
        reconcile_item(next_bucket(reconcile_seconds), reconcile_seconds),
    ]
    _append(
        store, NewEvent(event_id(gate.execution, gate.token, "opened"), "GateOpened", gate.to_json()), work
    )


def release_gate(store: EventStore, gate: Gate, diff: str | None, approver: str) -> None:
    """Keep the released ``gate`` watched for a new diff while its execution runs (``GateReleased``)."""
    data = {"execution": gate.execution, "token": gate.token, "diff": diff, "approver": approver}
    _append(store, NewEvent(event_id(gate.execution, gate.token, "released"), "GateReleased", data), [])


def close_gate(store: EventStore, gate: Gate, outcome: str) -> None:
    """Take ``gate`` out of the index (``GateClosed``) with how it ended."""
    event = NewEvent(
        event_id(gate.execution, gate.token, "closed"),
        "GateClosed",
        {"execution": gate.execution, "token": gate.token, "outcome": outcome},
    )
    _append(store, event, [])


def next_bucket(seconds: float) -> int:
    """The reconcile round at least ``seconds`` from now: rounds fall on multiples of ``seconds``, so
    every process asking at about the same time names the same one."""
    return int((datetime.now(UTC).timestamp() + seconds) // seconds)


def reconcile_item(bucket: int, seconds: float) -> WorkItem:
    """The reconcile round due at ``bucket * seconds`` (one per bucket, whoever enqueues it)."""
    return WorkItem(
        id=f"{RECONCILE}|{bucket}",
        queue=QUEUE,
        stream_id=RECONCILE_STREAM,
        kind=RECONCILE,
        payload={"bucket": bucket},
        run_at=datetime.fromtimestamp(bucket * seconds, UTC),
    )


def _append(store: EventStore, event: NewEvent, work: list[WorkItem]) -> None:
    """Append one index event (with its work), once: its id is deterministic, so an event stored
    already (identically, or as another outcome of the same close) is left as it is."""
    for _ in range(20):
        index = read_index(store)
        snapshot = None
        if index.read + 1 >= SNAPSHOT_EVERY:  # the events a check would read past the snapshot
            state = {"gates": dict(index.state["gates"])}
            _fold(state, event.type, dict(event.data))
            snapshot = Snapshot(GATES_STREAM, index.version + 1, state)
        try:
            store.append(GATES_STREAM, index.version, [event], enqueue=work, snapshot=snapshot)
        except ConcurrencyError:
            continue
        except DuplicateEventId:
            return
        return
    raise UsageError(f"{GATES_STREAM}: gave up after 20 concurrent appends")
