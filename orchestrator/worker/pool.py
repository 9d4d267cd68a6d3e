"""A fixed pool of daemon threads running the worker's items.

Not :class:`concurrent.futures.ThreadPoolExecutor`: its threads are joined when the interpreter
exits, so one executor that ignores :attr:`TaskContext.cancelled` would keep a worker alive past its
shutdown grace period. Here the threads are daemons: once the worker has released the leases of the
items still running (their results would be fenced off anyway), the process exits, whatever they do.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

import structlog

log = structlog.get_logger(__name__)

Job = Callable[[], None]


class DaemonPool:
    """``size`` daemon threads taking jobs in submission order."""

    def __init__(self, size: int, name: str = "worker") -> None:
        if size < 1:
            raise ValueError("a pool needs at least one thread")
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._serve, name=f"{name}-{n}", daemon=True) for n in range(size)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, job: Job) -> None:
        """Run ``job`` on the next free thread. It must handle its own errors (they are logged here)."""
        self._jobs.put(job)

    def shutdown(self, timeout: float = 0.0) -> bool:
        """Let the threads finish their current job and stop; wait up to ``timeout`` seconds.

        True when all of them stopped in time (the others go on as daemons).
        """
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join(timeout)
        return not any(thread.is_alive() for thread in self._threads)

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job()
            except Exception:  # a job's own bug must not kill the thread
                log.exception("worker.job_crashed")
