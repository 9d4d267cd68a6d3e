"""How an execution lives in the event store: stream names, event ids, work items.

* An execution's id is ``<state machine>:<execution name>`` (names are unique per state machine, as
  in Step Functions); its stream is ``execution:<id>``.
* Each history event is stored as one store event whose type is the history type and whose data is
  ``HistoryEvent.to_record()``. Its store id is derived from the stream and the history event id, so
  re-appending a batch after a lost acknowledgement is a no-op, never a duplicate.
* ``ExecutionStarted`` carries the execution's facts in its metadata: state machine, version, alias,
  name, who started it and why (``trigger``), and where it came from (``reset_from``).
* Work the machine waits for is a work item beside the events, committed in the same transaction:
  ``task`` items (run a Task state's attempt) and ``timer`` items (wake the execution at a time: a
  Wait, a retry back-off, a task's TimeoutSeconds or HeartbeatSeconds deadline, the execution's
  timeout; only the next one, ``Execution.next_due``, is stored). A timer whose deadline moved (a
  heartbeat) or whose task was answered fires as a no-op. Deadlines therefore live in the database
  and survive restarts. A task item's payload also says how many events the stream had when it was
  enqueued (``events``): a worker that first meets the execution through it knows whether the stream
  can have a snapshot yet (see ``Executions.load``).
* Every ``Executions.snapshot_every`` events an append also saves a snapshot of the machine (see
  ``orchestrator.engine.snapshot``), with the execution's start facts and the definition's sha256.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from orchestrator.engine.events import HistoryEvent
from orchestrator.engine.interpreter import Execution
from orchestrator.store import NewEvent, RecordedEvent, WorkItem

_NAMESPACE = uuid.UUID("0b6f4f55-9f61-4d1e-8d0c-5f7c8f0e2a11")
TASK_QUEUE = "tasks"
TIMER_QUEUE = "timers"
LINKS_PREFIX = "execution-links:"


def execution_id(state_machine: str, name: str) -> str:
    """The id of execution ``name`` of ``state_machine``."""
    return f"{state_machine}:{name}"


def stream_of(execution: str) -> str:
    """The event stream of an execution."""
    return f"execution:{execution}"


def links_stream(execution: str) -> str:
    """The stream that records what an execution led to (resets), kept apart so its history never changes."""
    return f"{LINKS_PREFIX}{execution}"


def to_new_events(
    execution: str, events: Iterable[HistoryEvent], metadata: dict[str, Any] | None = None
) -> list[NewEvent]:
    """Store events for history events; ``metadata`` goes on the first one."""
    out = []
    for i, event in enumerate(events):
        out.append(
            NewEvent(
                uuid.uuid5(_NAMESPACE, f"{execution}/{event.id}"),
                event.type,
                event.to_record(),
                dict(metadata) if (metadata and i == 0) else {},
            )
        )
    return out


def from_records(records: Sequence[RecordedEvent]) -> list[HistoryEvent]:
    """History events from stored ones."""
    return [HistoryEvent.from_record(r.data) for r in records]


def work_items(execution_id_: str, execution: Execution, events: int | None = None) -> list[WorkItem]:
    """The work an execution waits for now: its unstarted tasks and its next timer.

    ``events``: the stream's length with the append that enqueues them (kept in task items'
    payloads; an item enqueued before keeps the payload it was first enqueued with).
    """
    stream = stream_of(execution_id_)
    task_payload: dict[str, Any] = {} if events is None else {"events": events}
    items = [
        WorkItem(
            id=f"{execution_id_}|task|{task.id}",
            queue=TASK_QUEUE,
            stream_id=stream,
            kind="task",
            payload={"execution": execution_id_, "task": task.id, **task_payload},
        )
        for task in execution.pending_tasks()
        if not task.started
    ]
    due = execution.next_due()
    if due is not None and execution.status == "RUNNING":
        items.append(
            WorkItem(
                id=f"{execution_id_}|timer|{due!r}",
                queue=TIMER_QUEUE,
                stream_id=stream,
                kind="timer",
                payload={"execution": execution_id_, "due": due},
                run_at=datetime.fromtimestamp(due, UTC),
            )
        )
    return items


def events_when_enqueued(payload: Mapping[str, Any]) -> int | None:
    """How many events the stream had when the task item with ``payload`` was enqueued (None: unknown)."""
    events = payload.get("events")
    return events if isinstance(events, int) and not isinstance(events, bool) else None


def seed_of(execution: str) -> int:
    """The execution's random seed: stable, so replays draw the same numbers."""
    return uuid.uuid5(_NAMESPACE, execution).int >> 64
