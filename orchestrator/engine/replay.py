"""Fold a stored history back into a live execution, and catch a history that cannot be.

State is a fold over events. Rather than keep a second, hand-written "apply" for every event type
(which would have to agree with the machine forever), the fold re-runs the deterministic machine and
feeds it the facts only the outside world can supply, read from the history itself: ``TaskStarted``,
``TaskHeartbeat``, ``TaskSucceeded``, ``TaskFailed`` (a worker's report), ``ExecutionAborted`` (an
operator), ``ExecutionRedriven``, our own informational events (a role assumed, an approval recorded),
and the passing of time (any other event the machine has not produced yet: a timer fell due at that
event's timestamp). ``TaskTimedOut`` is the passing of time when one of the machine's own deadlines
fell due by then, else a driver's report (run-local's mocks).
Every event the machine emits on the way must equal the stored one, so a corrupted, reordered or
impossible history is detected (``HistoryDiverged``) instead of silently producing another state.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from orchestrator.engine.events import OWN_TYPES, HistoryEvent
from orchestrator.engine.interpreter import Execution

EXTERNAL_TASK_EVENTS = frozenset(
    {"TaskStarted", "TaskHeartbeat", "TaskSucceeded", "TaskFailed", "TaskTimedOut"}
)


class HistoryDiverged(Exception):
    """The stored history is not one the definition can produce."""

    def __init__(self, event_id: int, message: str) -> None:
        super().__init__(f"history diverges at event {event_id}: {message}")
        self.event_id = event_id


def replay(execution: Execution, history: Sequence[HistoryEvent]) -> Execution:
    """Bring a fresh ``execution`` (built with the sink it should keep) to the end of ``history``."""
    produced: list[HistoryEvent] = []
    downstream = execution.sink
    execution.sink = produced.append
    try:
        if not history or history[0].type != "ExecutionStarted":
            raise HistoryDiverged(1, "a history starts with ExecutionStarted")
        first = history[0]
        execution.start(json.loads(first.details["input"]), first.timestamp)
        _continue(execution, produced, history, _check(produced, history, 0))
        return execution
    finally:
        execution.sink = downstream


def resume(execution: Execution, events: Sequence[HistoryEvent]) -> Execution:
    """Bring ``execution``, restored from a snapshot taken after event ``events[0].id - 1``, to the end.

    The same checks as ``replay``: every event the machine produces must equal the stored one.
    """
    produced: list[HistoryEvent] = []
    downstream = execution.sink
    execution.sink = produced.append
    try:
        if events and events[0].id != execution.last_event_id + 1:
            raise HistoryDiverged(
                events[0].id,
                f"the snapshot ends at event {execution.last_event_id}, the events do not follow",
            )
        _continue(execution, produced, events, 0)
        return execution
    finally:
        execution.sink = downstream


def _continue(
    execution: Execution, produced: list[HistoryEvent], history: Sequence[HistoryEvent], checked: int
) -> None:
    while checked < len(history):
        event = history[checked]
        before = len(produced)
        try:
            _feed(execution, event)
        except (KeyError, ValueError) as exc:
            raise HistoryDiverged(event.id, f"{event.type} cannot happen here: {exc}") from None
        if len(produced) == before:
            raise HistoryDiverged(event.id, f"{event.type} cannot happen here")
        checked = _check(produced, history, checked)


def _feed(execution: Execution, event: HistoryEvent) -> None:
    details = event.details
    if event.type == "TaskTimedOut":
        due = execution.next_due()
        if due is not None and due <= event.timestamp:
            execution.advance_to(event.timestamp)  # one of the machine's own deadlines fell due
            return
    if event.type in EXTERNAL_TASK_EVENTS:
        task = next((t for t in execution.pending_tasks() if t.scope == event.scope), None)
        if task is None:
            raise HistoryDiverged(event.id, f"{event.type} for a task that is not pending")
        if event.type == "TaskStarted":
            execution.task_started(task.id, event.timestamp)
        elif event.type == "TaskHeartbeat":
            execution.task_heartbeat(task.id, event.timestamp)
        elif event.type == "TaskSucceeded":
            execution.task_succeeded(task.id, json.loads(details["output"]), event.timestamp)
        elif event.type == "TaskFailed":
            execution.task_failed(
                task.id, details.get("error", ""), details.get("cause", ""), event.timestamp
            )
        else:
            heartbeat = details.get("error") == "States.HeartbeatTimeout"
            execution.task_timed_out(task.id, event.timestamp, heartbeat=heartbeat)
    elif event.type == "ExecutionRedriven":
        execution.redrive(event.timestamp)
    elif event.type == "ExecutionAborted":
        execution.stop(details.get("error"), details.get("cause"), event.timestamp)
    elif event.type in OWN_TYPES:
        execution.record(event.type, details, event.scope, event.timestamp)
    else:
        execution.advance_to(event.timestamp)


def _check(produced: Sequence[HistoryEvent], history: Sequence[HistoryEvent], start: int) -> int:
    for i in range(start, len(produced)):
        if i >= len(history):
            raise HistoryDiverged(produced[i].id, f"the stored history ends before {produced[i].type}")
        mine, stored = produced[i], history[i]
        if (mine.id, mine.type, mine.scope, mine.details) != (
            stored.id,
            stored.type,
            stored.scope,
            stored.details,
        ):
            raise HistoryDiverged(
                stored.id,
                f"stored {stored.type} {stored.details} "
                f"but the definition produces {mine.type} {mine.details}",
            )
    return len(produced)
