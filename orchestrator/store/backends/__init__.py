"""What each database must provide to the :class:`~orchestrator.store.EventStore`.

The store validates and encodes everything, then hands a backend an :class:`AppendBatch` of JSON
strings and UTC datetimes. A backend runs its dialect's SQL (kept in the ``.sql`` file beside it),
turns driver errors into :mod:`orchestrator.store.errors`, and decodes rows into the model. The
contract tests in ``tests/store`` run against every backend, so a new one proves itself by passing
them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from sqlalchemy.engine import Connection

from orchestrator.store.model import ClaimedWork, QueueDepth, RecordedEvent, Snapshot, WorkerRecord


@dataclass(frozen=True)
class ConnectionOptions:
    """How to connect; every field has a default suited to its backend.

    ``busy_timeout``: SQLite, seconds to wait for another process's write lock before
    :class:`~orchestrator.store.errors.StoreBusy`. ``poll_interval``: SQLite, seconds between checks
    for events written by other processes in ``wait_for_events`` (writes of this process wake
    waiters at once). ``sqlite_synchronous``: ``"normal"`` (WAL default: a commit survives a crash
    of the process, the last ones may be lost to a power cut; never corrupts) or ``"full"`` (fsync
    at every commit). ``sqlite_checkpoint_interval``: seconds after a commit within which a thread of
    the SQLite backend checkpoints the WAL (with ``"normal"``, when commits reach the disk; appends
    never wait for a checkpoint), 0 to leave checkpoints to SQLite (in the commit that fills
    1,000 pages of WAL); ``sqlite_checkpoint_pages``: WAL pages past which that thread has the WAL
    restart from its beginning (see :mod:`~orchestrator.store.backends.checkpoints`).
    ``connect_timeout``: PostgreSQL, seconds. ``pool_size``: pooled connections
    (PostgreSQL: all of them; SQLite: the readers, beside the one writer), and twice as many more
    on demand.
    """

    busy_timeout: float = 5.0
    poll_interval: float = 0.05
    sqlite_synchronous: Literal["normal", "full"] = "normal"
    sqlite_checkpoint_interval: float = 0.1
    sqlite_checkpoint_pages: int = 8192
    connect_timeout: float = 10.0
    pool_size: int = 5


@dataclass(frozen=True)
class EncodedWork:
    """A :class:`~orchestrator.store.WorkItem` with its payload encoded and ``run_at`` resolved."""

    id: str
    queue: str
    stream_id: str
    kind: str
    payload: str
    run_at: datetime


@dataclass(frozen=True)
class AppendBatch:
    """One validated, encoded append: everything in it commits together or not at all.

    Events are given as parallel lists (``event_ids[i]``, ``event_types[i]``, ...): the i-th gets
    version ``expected_version + i + 1``. ``now`` is the recorded time of the events and the clock
    against which the leases of ``complete`` are checked. ``guard``: ``(stream, version)``, commit
    only if that stream is at that version when the append holds the append lock (see
    :meth:`~orchestrator.store.EventStore.append`).
    """

    stream_id: str
    expected_version: int
    now: datetime
    event_ids: Sequence[uuid.UUID]
    event_types: Sequence[str]
    event_data: Sequence[str]
    event_metadata: Sequence[str]
    enqueue: Sequence[EncodedWork] = ()
    complete: Sequence[str] = ()
    worker_id: str | None = None
    snapshot_version: int | None = None
    snapshot_state: str | None = None
    guard: tuple[str, int] | None = None


class Backend(Protocol):
    """A database holding events, snapshots and work items; see the module docstring."""

    def connect(self) -> AbstractContextManager[Connection]:
        """A connection for reads; raises ``StoreUnavailable`` when the database cannot be reached."""
        ...

    def schema_connection(self) -> AbstractContextManager[Connection]:
        """A connection in a transaction holding the exclusive schema lock; commits on success."""
        ...

    def append(self, batch: AppendBatch) -> int:
        """Commit ``batch``; return the position of its first event (0 when it has none).

        Raises ``StreamMoved`` (the guard stream is not at the guard's version: checked first, in the
        transaction, under the append lock), ``ConcurrencyError`` (stream not at
        ``expected_version``), ``LeaseLost``, or
        ``DuplicateEventId`` (an event id is stored already; ``event_ids`` may be empty when the
        backend cannot tell which); nothing is written when it raises.
        """
        ...

    def read_stream(self, stream_id: str, from_version: int, limit: int | None) -> list[RecordedEvent]:
        """Events of ``stream_id`` with version >= ``from_version``, in order, at most ``limit``."""
        ...

    def events_by_id(self, stream_id: str, event_ids: Sequence[uuid.UUID]) -> list[RecordedEvent]:
        """The events of ``stream_id`` among ``event_ids``, in any order."""
        ...

    def stream_version(self, stream_id: str) -> int:
        """Version of the stream's last event, 0 when it has none."""
        ...

    def read_all(self, after_position: int, limit: int) -> list[RecordedEvent]:
        """Events with position > ``after_position`` in position order, at most ``limit``."""
        ...

    def last_position(self) -> int:
        """Position of the last committed event, 0 when there is none."""
        ...

    def wait_for_events(self, after_position: int, timeout: float) -> bool:
        """Block until an event after ``after_position`` is committed or ``timeout`` passes."""
        ...

    def load_snapshot(self, stream_id: str) -> Snapshot | None:
        """The latest snapshot of ``stream_id``."""
        ...

    def claim(  # noqa: PLR0917 - the protocol mirrors EventStore.claim
        self,
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        now: datetime,
        lease_until: datetime,
        history_limit: int,
    ) -> list[ClaimedWork]:
        """Lease up to ``limit`` due, unleased (or lease-expired), uncompleted items to ``worker_id``;
        with each, its stream's events when ``history_limit`` > 0 and there are at most that many."""
        ...

    def renew(
        self, worker_id: str, work_ids: Sequence[str], now: datetime, lease_until: datetime
    ) -> list[str]:
        """Extend the unexpired leases ``worker_id`` holds among ``work_ids``; return their ids."""
        ...

    def release(self, worker_id: str, work_ids: Sequence[str]) -> None:
        """Give back the leases ``worker_id`` holds among ``work_ids``; the items are claimable again."""
        ...

    def next_due(self, queues: Sequence[str]) -> datetime | None:
        """When the next uncompleted item of ``queues`` becomes claimable (its ``run_at``, or the
        expiry of its lease); None when there is none."""
        ...

    def queue_depths(self, queues: Sequence[str], now: datetime) -> list[QueueDepth]:
        """Ready, scheduled and leased counts of the uncompleted items of each of ``queues`` that has any."""
        ...

    def wait_for_work(self, queues: Sequence[str], timeout: float) -> bool:
        """Block until an item of ``queues`` may have become claimable since the previous call, or
        ``timeout`` passes (False). The first call returns True at once."""
        ...

    def save_worker(self, worker: WorkerRecord) -> None:
        """Insert or replace the registry row of ``worker.id``."""
        ...

    def remove_worker(self, worker_id: str) -> None:
        """Delete the registry row of ``worker_id`` (none: nothing happens)."""
        ...

    def prune_workers(self, before: datetime) -> None:
        """Delete the registry rows whose last heartbeat is older than ``before``."""
        ...

    def workers(self) -> list[WorkerRecord]:
        """Every registry row, oldest worker first."""
        ...

    def close(self) -> None:
        """Release connections; the backend is unusable afterwards."""
        ...
