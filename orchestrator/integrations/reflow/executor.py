"""The executor of ``"Resource": "reflow:<network>"`` Task states.

For one attempt it loads the network (structural checks only: the worker imports no actor code),
spawns the child, records ``ExternalRunStarted`` (system, network, run id, child pid, attempt: no
input, no credentials), heartbeats while it waits, and turns the child's answer into the task's
result or a :class:`TaskError`. The run id is derived from execution, state, task and attempt, so the
same attempt always has the same id.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import structlog

from orchestrator.errors import TIMEOUT
from orchestrator.executions.tasks import TaskContext, TaskError
from orchestrator.integrations.reflow.catalog import ReflowSettings, UnknownNetwork
from orchestrator.integrations.reflow.runner import run_isolated
from orchestrator.integrations.reflow.spec import INVALID_NETWORK, NetworkInvalid

log = structlog.get_logger(__name__)

UNKNOWN_NETWORK = "Reflow.UnknownNetwork"
_RUN_IDS = uuid.UUID("2b4f3c8e-9d61-4a0b-8f1e-52c7d0a3e914")


def run_id_of(context: TaskContext) -> str:
    """The deterministic id of this attempt's run."""
    task = context.task
    return str(uuid.uuid5(_RUN_IDS, f"{context.execution}\n{task.state_name}\n{task.id}\n{task.attempt}"))


def heartbeat_interval(heartbeat_seconds: int | None) -> float:
    """How often to heartbeat: a third of ``HeartbeatSeconds``, at most every 5 s."""
    if not heartbeat_seconds:
        return 5.0
    return max(0.2, min(5.0, heartbeat_seconds / 3))


def remaining_seconds(context: TaskContext, default: float | None) -> float | None:
    """What is left of ``TimeoutSeconds`` (counted from ``TaskStarted``), else ``default``."""
    task = context.task
    if task.timeout_seconds is None:
        return default
    if task.started_at is None:
        return float(task.timeout_seconds)
    return task.started_at + task.timeout_seconds - time.time()


class ReflowExecutor:
    """Runs ``reflow:<network>`` tasks, each in a child process of its own."""

    def __init__(self, settings: ReflowSettings) -> None:
        self.settings = settings

    def __call__(self, context: TaskContext) -> Any:
        name = context.resource_name
        try:
            spec = self.settings.load(name)
        except UnknownNetwork as exc:
            raise TaskError(UNKNOWN_NETWORK, str(exc)) from None
        except NetworkInvalid as exc:
            raise TaskError(INVALID_NETWORK, str(exc)) from None
        run_id = run_id_of(context)
        timeout = remaining_seconds(context, self.settings.timeout_seconds)
        if timeout is not None and timeout <= 0:
            raise TaskError(TIMEOUT, f"no time left for reflow network {name!r} (TimeoutSeconds passed)")

        def started(pid: int) -> None:
            context.record(
                "ExternalRunStarted",
                {
                    "system": "reflow",
                    "network": name,
                    "runId": run_id,
                    "pid": pid,
                    "attempt": context.task.attempt,
                },
            )

        log.info(
            "reflow.task_started", execution=context.execution, state=context.task.state_name, run=run_id
        )
        return run_isolated(
            spec,
            context.task.parameters,
            self.settings,
            role_environment=context.role_environment,
            timeout=timeout,
            cancelled=context.cancelled,
            heartbeat=lambda: context.heartbeat(None),
            heartbeat_interval=heartbeat_interval(context.task.heartbeat_seconds),
            on_start=started,
        )
