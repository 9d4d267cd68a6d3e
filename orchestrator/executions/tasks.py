"""What a Task state's executor gets and gives: the contract between the engine and integrations.

An executor is a callable registered under a resource scheme (``reflow``, ``airflow``, ``arn``,
``phabricator``...). The worker calls it with a :class:`TaskContext` for one attempt of one Task
state, in a worker thread, and it:

* returns the task's result (any JSON value): the task succeeds;
* raises :class:`TaskError` with an ASL error name: the task fails (Retry and Catch apply);
* returns :data:`PENDING`: an outside fact will answer the task later (an approval gate; Step
  Functions' ``.waitForTaskToken``). The worker lets go of it, nobody stays busy, and the task stays
  started until :meth:`Executions.send_task_success` / ``send_task_failure`` answers it or one of its
  deadlines (``TimeoutSeconds``, ``HeartbeatSeconds``) fires.

While it runs, a long task calls :meth:`TaskContext.heartbeat` (Step Functions' ``SendTaskHeartbeat``)
and watches :attr:`TaskContext.cancelled`, which is set when the task must stop: the execution was
stopped, the task timed out, or the worker is shutting down and the grace period ran out.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from orchestrator.engine.events import HistoryEvent
from orchestrator.engine.interpreter import TaskRequest


class TaskError(Exception):
    """A task's failure, with its ASL error name (``Reflow.ActorFailed``, ``States.Permissions``...)."""

    def __init__(self, error: str, cause: str = "") -> None:
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


class TaskCancelled(Exception):
    """Raised by :meth:`TaskContext.heartbeat` when the task no longer runs (stopped, timed out)."""


class _Pending:
    _instance: _Pending | None = None

    def __new__(cls) -> _Pending:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "PENDING"


PENDING: Final = _Pending()
"""An executor's answer meaning: an outside fact completes this task later."""


def _no_heartbeat(details: Mapping[str, Any] | None = None) -> None:
    del details


def _no_record(kind: str, details: dict[str, Any]) -> int:
    raise RuntimeError(f"this task context cannot record events ({kind})")


@dataclass
class TaskContext:
    """One attempt of one Task state, as an executor sees it."""

    execution: str
    """The execution's id (``<state machine>:<name>``)."""
    task: TaskRequest
    """The request: ``id`` (the task token), ``state_name``, ``resource``, ``parameters`` (the
    effective input), ``timeout_seconds``, ``heartbeat_seconds``, ``credentials``, ``attempt``."""
    state_machine: str
    version: int
    identity: str
    """Who this run acts for: the last approver recorded in the history, else who started it."""
    meta: Mapping[str, Any] = field(default_factory=dict)
    """The execution's start facts: ``started_by``, ``trigger`` (e.g. the Phabricator revision)..."""
    history: tuple[HistoryEvent, ...] = ()
    role_environment: dict[str, str] | None = None
    """The AWS role session this task runs under, as environment variables (``AWS_ACCESS_KEY_ID``,
    ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_DEFAULT_REGION``), set by the aws
    integration before the executor runs; None when no role is mapped. Secret: never log or record."""
    cancelled: threading.Event = field(default_factory=threading.Event)
    heartbeat: Callable[[Mapping[str, Any] | None], None] = _no_heartbeat
    """Report progress: keeps the worker's lease and pushes the ``HeartbeatSeconds`` deadline.
    Raises :class:`TaskCancelled` when the task no longer runs."""
    record: Callable[[str, dict[str, Any]], int] = _no_record
    """Record one of our own events (``RoleAssumed``, ``ApprovalRequested``...) in the task's thread,
    durably, and return its event id. Never put secrets in ``details``."""

    @property
    def resource_name(self) -> str:
        """The resource without its scheme: ``reflow:fanout`` gives ``fanout``."""
        return self.task.resource.split(":", 1)[1] if ":" in self.task.resource else self.task.resource


TaskExecutor = Callable[[TaskContext], Any]


def identity_of(meta: Mapping[str, Any], history: tuple[HistoryEvent, ...] | list[HistoryEvent]) -> str:
    """The identity a run acts under: the latest ``ApprovalGranted`` approver, else the trigger's
    approver, else who started it."""
    for event in reversed(history):
        if event.type == "ApprovalGranted":
            approver = event.details.get("approver")
            if isinstance(approver, str) and approver:
                return approver
    trigger = meta.get("trigger")
    if isinstance(trigger, Mapping):
        approver = trigger.get("approver")
        if isinstance(approver, str) and approver:
            return approver
    return str(meta.get("started_by") or "")
