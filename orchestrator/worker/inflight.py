"""The items a worker is running: what the heartbeat renews, the registry shows and shutdown releases."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orchestrator.store import ClaimedWork


@dataclass
class InFlight:
    """One claimed work item while it runs.

    ``cancelled`` is handed to the task's executor (:attr:`TaskContext.cancelled`): the heartbeat sets
    it when the lease is lost or the task is no longer pending, shutdown when the grace period ran out.
    """

    work: ClaimedWork
    since: datetime
    claimed_at: float = 0.0
    """The monotonic time its claim was sent: how fresh the history the claim carried is."""
    cancelled: threading.Event = field(default_factory=threading.Event)
    state: str | None = None
    attempt: int | None = None
    finished: bool = False
    started: bool = False
    """A pool thread took it (until then it waits in the pool's queue, claimed ahead)."""
    withdrawn: bool = False
    """Given back before any thread took it (shutdown): it must not run."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def begin(self) -> bool:
        """Mark it started, unless it was withdrawn (then it must not run): the pool thread's side."""
        with self._lock:
            if self.withdrawn:
                return False
            self.started = True
            return True

    def withdraw(self) -> bool:
        """Mark it withdrawn, unless a thread started it already: the shutdown's side."""
        with self._lock:
            if self.started:
                return False
            self.withdrawn = True
            return True

    @property
    def execution(self) -> str | None:
        """The execution the item belongs to, when its payload names one."""
        value = self.work.payload.get("execution")
        return value if isinstance(value, str) else None

    @property
    def task(self) -> str | None:
        """The task token of a ``task`` item."""
        value = self.work.payload.get("task") if self.work.kind == "task" else None
        return value if isinstance(value, str) else None

    def describe(self) -> dict[str, Any]:
        """A JSON object for the workers registry."""
        return {
            "work": self.work.id,
            "queue": self.work.queue,
            "kind": self.work.kind,
            "execution": self.execution,
            "state": self.state,
            "attempt": self.attempt,
            "started": self.started,
            "since": self.since.isoformat(timespec="milliseconds"),
        }


class InFlightItems:
    """The in-flight items of one worker, shared by its threads (every method holds a lock)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, InFlight] = {}

    def add(self, item: InFlight) -> None:
        """Track ``item`` from its claim on."""
        with self._lock:
            self._items[item.work.id] = item

    def remove(self, work_id: str) -> None:
        """Stop tracking the item ``work_id`` (done, or given up)."""
        with self._lock:
            self._items.pop(work_id, None)

    def snapshot(self) -> list[InFlight]:
        """The items running now."""
        with self._lock:
            return list(self._items.values())

    def __contains__(self, work_id: object) -> bool:
        with self._lock:
            return work_id in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
