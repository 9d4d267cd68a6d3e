"""The event vocabulary of an execution: Step Functions' history events, plus our own.

Every fact about an execution is one of these events. Names and detail fields follow botocore's
``stepfunctions`` model (``HistoryEvent``) so that ``orchestrator history --json`` reads like
``aws stepfunctions get-execution-history``; events Step Functions has no name for (approvals, role
sessions, resets) are added in the same style.

An event is deliberately small: ``id`` (1-based, gap-free within the execution), ``previous_event_id``,
``timestamp`` (seconds since the epoch, float: the pure core never reads a clock, the driver hands it
the time), ``type``, ``details`` (the ``<type>EventDetails`` object) and ``scope``: which thread of the
execution the event belongs to (``""`` for the top level, ``"Map/3"`` for iteration 3 of state
``Map``, ``"Par/1"`` for branch 1 of ``Par``, nested with ``/``). Step Functions leaves that implicit in
``previousEventId``; we keep it explicit so that folding a history never has to guess.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# Step Functions history event types (botocore stepfunctions model, HistoryEventType).
STEP_FUNCTIONS_TYPES: frozenset[str] = frozenset(
    {
        "ActivityFailed",
        "ActivityScheduled",
        "ActivityScheduleFailed",
        "ActivityStarted",
        "ActivitySucceeded",
        "ActivityTimedOut",
        "ChoiceStateEntered",
        "ChoiceStateExited",
        "ExecutionAborted",
        "ExecutionFailed",
        "ExecutionStarted",
        "ExecutionSucceeded",
        "ExecutionTimedOut",
        "FailStateEntered",
        "LambdaFunctionFailed",
        "LambdaFunctionScheduled",
        "LambdaFunctionScheduleFailed",
        "LambdaFunctionStarted",
        "LambdaFunctionStartFailed",
        "LambdaFunctionSucceeded",
        "LambdaFunctionTimedOut",
        "MapIterationAborted",
        "MapIterationFailed",
        "MapIterationStarted",
        "MapIterationSucceeded",
        "MapStateAborted",
        "MapStateEntered",
        "MapStateExited",
        "MapStateFailed",
        "MapStateStarted",
        "MapStateSucceeded",
        "ParallelStateAborted",
        "ParallelStateEntered",
        "ParallelStateExited",
        "ParallelStateFailed",
        "ParallelStateStarted",
        "ParallelStateSucceeded",
        "PassStateEntered",
        "PassStateExited",
        "SucceedStateEntered",
        "SucceedStateExited",
        "TaskFailed",
        "TaskScheduled",
        "TaskStarted",
        "TaskStartFailed",
        "TaskStateAborted",
        "TaskStateEntered",
        "TaskStateExited",
        "TaskSubmitFailed",
        "TaskSubmitted",
        "TaskSucceeded",
        "TaskTimedOut",
        "WaitStateAborted",
        "WaitStateEntered",
        "WaitStateExited",
        "MapRunAborted",
        "MapRunFailed",
        "MapRunStarted",
        "MapRunSucceeded",
        "ExecutionRedriven",
        "MapRunRedriven",
        "EvaluationFailed",
    }
)

# Our own events, named in the same style. ``ExternalRunStarted``: a task's run in another system
# (details: ``system`` "airflow" | "reflow", ``runId``, ``url`` when the system has a UI, and the
# system's own identifiers such as ``dagId``), for the history and the lineage.
OWN_TYPES: frozenset[str] = frozenset(
    {
        "ApprovalRequested",
        "ApprovalGranted",
        "ApprovalRejected",
        "RoleAssumed",
        "ExecutionReset",
        "TaskHeartbeat",
        "ExternalRunStarted",
    }
)

# Where botocore names the details member differently from ``<type>EventDetails``.
_DETAILS_KEY: dict[str, str] = {
    "MapIterationStarted": "mapIterationStartedEventDetails",
    "MapIterationSucceeded": "mapIterationSucceededEventDetails",
    "MapIterationFailed": "mapIterationFailedEventDetails",
    "MapIterationAborted": "mapIterationAbortedEventDetails",
}
for _state in ("Choice", "Fail", "Map", "Parallel", "Pass", "Succeed", "Task", "Wait"):
    _DETAILS_KEY[f"{_state}StateEntered"] = "stateEnteredEventDetails"
    _DETAILS_KEY[f"{_state}StateExited"] = "stateExitedEventDetails"


def details_key(event_type: str) -> str:
    """The name of the details member of an event of this type in the AWS JSON shape."""
    key = _DETAILS_KEY.get(event_type)
    if key is None:
        key = event_type[0].lower() + event_type[1:] + "EventDetails"
    return key


@dataclass(slots=True)
class HistoryEvent:
    """One event of an execution's history."""

    id: int
    previous_event_id: int
    timestamp: float
    type: str
    details: dict[str, Any] = field(default_factory=dict)
    scope: str = ""

    def to_aws(self) -> dict[str, Any]:
        """The event as ``get-execution-history`` shows it (timestamps as ISO-8601 strings)."""
        out: dict[str, Any] = {
            "timestamp": iso(self.timestamp),
            "type": self.type,
            "id": self.id,
            "previousEventId": self.previous_event_id,
        }
        if self.details:
            out[details_key(self.type)] = self.details
        return out

    def to_record(self) -> dict[str, Any]:
        """A compact, lossless dict for storage (see ``from_record``)."""
        return {
            "id": self.id,
            "prev": self.previous_event_id,
            "ts": self.timestamp,
            "type": self.type,
            "details": self.details,
            "scope": self.scope,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> HistoryEvent:
        """Inverse of ``to_record``."""
        return cls(
            record["id"], record["prev"], record["ts"], record["type"], record["details"], record["scope"]
        )


def iso(timestamp: float) -> str:
    """Seconds since the epoch as AWS prints times: ``2024-01-02T03:04:05.123Z``."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
