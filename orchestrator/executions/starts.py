"""``TaskStarted`` of quick tasks: appended together with the task's first own append.

A Task state without ``TimeoutSeconds`` or ``HeartbeatSeconds`` arms no deadline when it starts, and
an attempt whose worker dies while it runs is run again from the beginning whether its
``TaskStarted`` was stored or not (the work item is claimed again once its lease expires). Nothing
durable depends on that event before the task appends something of its own: its result, a fact it
records (``TaskContext.record``), or the release of its work item when it waits for a token. So
:class:`~orchestrator.executions.service.Executions` appends it in that same transaction, which
halves the appends of a quick task, and registers the task here meanwhile: a task still running
after ``grace`` seconds gets its ``TaskStarted`` appended on its own by this module's thread, so the
history shows a long task running as it always did.

Hand-written rather than ``sched`` or ``threading.Timer``: one thread serves every task, lives only
while tasks come (it ends after ``LINGER`` seconds without any), and forgotten entries cost nothing
(they are dropped when they come up).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

import structlog

log = structlog.get_logger(__name__)

LINGER = 5.0
"""Seconds the thread waits for a new task before it ends (starting a thread per task costs more than a
quick task does)."""

StartTask = Callable[[str, str, float], None]
"""Append ``TaskStarted`` of task ``token`` of ``execution``, started at ``started_at`` (if it still
waits for it)."""


class DeferredStarts:
    """Tasks whose ``TaskStarted`` waits for their first append, for at most ``grace`` seconds each."""

    def __init__(self, grace: float, start: StartTask) -> None:
        self.grace = grace
        self._start = start
        self._waiting: dict[tuple[str, str], float] = {}
        self._queue: deque[tuple[float, str, str]] = deque()  # (due, execution, token): in due order
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, execution: str, token: str, started_at: float) -> None:
        """Task ``token`` of ``execution`` started at ``started_at`` and its ``TaskStarted`` waits."""
        with self._condition:
            self._waiting[(execution, token)] = started_at
            self._queue.append((time.monotonic() + self.grace, execution, token))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="task-starts", daemon=True)
                self._thread.start()
            elif len(self._queue) == 1:
                self._condition.notify()  # the thread waits for tasks to come

    def discard(self, execution: str, token: str) -> None:
        """The task's ``TaskStarted`` no longer waits here (it is being appended with its first append)."""
        with self._condition:
            self._waiting.pop((execution, token), None)

    def _run(self) -> None:
        while True:
            with self._condition:
                while self._queue and self._queue[0][1:] not in self._waiting:
                    self._queue.popleft()  # finished in time: nothing to do
                if not self._queue:
                    self._condition.wait(LINGER)
                    if not self._queue:
                        self._thread = None
                        return
                    continue
                due, execution, token = self._queue[0]
                delay = due - time.monotonic()
                if delay > 0:
                    self._condition.wait(delay)
                    continue
                self._queue.popleft()
                started_at = self._waiting.pop((execution, token))
            try:
                self._start(execution, token, started_at)
            except Exception as error:  # the task's own append records TaskStarted in any case
                log.warning("task.start_not_recorded", execution=execution, token=token, error=str(error))
