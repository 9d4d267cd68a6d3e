"""The event store: what the engine, the registry and the worker call.

:class:`EventStore` validates and encodes every request, then hands it to the backend the URL names
(:mod:`~orchestrator.store.backends.sqlite` or :mod:`~orchestrator.store.backends.postgresql`). It
owns what is the same on every database: validation and encoding (:mod:`.batch`), the clock, the
idempotent replay of an append that was already stored, and logging (never of payloads).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self

import structlog
from alembic.util.exc import CommandError

from orchestrator.store import codec, migrate, summaries, urls
from orchestrator.store.backends import AppendBatch, Backend, ConnectionOptions
from orchestrator.store.backends.factory import open_backend
from orchestrator.store.batch import encode_append, utc
from orchestrator.store.errors import (
    ConcurrencyError,
    DuplicateEventId,
    LeaseLost,
    SchemaOutOfDate,
    StoreUnavailable,
    StreamMoved,
)
from orchestrator.store.model import (
    ClaimedWork,
    NewEvent,
    QueueDepth,
    RecordedEvent,
    Snapshot,
    WorkerRecord,
    WorkItem,
)
from orchestrator.store.summaries import ExecutionSummary, SummaryFilter

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The default clock: the current time in UTC."""
    return datetime.now(UTC)


class EventStore:
    """Append-only event streams, with a durable work queue and timers in the same transactions.

    Thread-safe. Open with :meth:`from_url`; close with :meth:`close` (or use it as a context
    manager).
    """

    def __init__(
        self,
        backend: Backend,
        url: str,
        *,
        payload_limit: int = codec.DEFAULT_PAYLOAD_LIMIT,
        clock: Clock = utc_now,
    ) -> None:
        """Wrap an open ``backend``; prefer :meth:`from_url`. ``url`` is the redacted URL."""
        if payload_limit < 1:
            raise ValueError("payload_limit must be positive")
        self._backend = backend
        self._payload_limit = payload_limit
        self._clock = clock
        self.url = url

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        payload_limit: int = codec.DEFAULT_PAYLOAD_LIMIT,
        auto_upgrade: bool | None = None,
        clock: Clock = utc_now,
        options: ConnectionOptions | None = None,
    ) -> EventStore:
        """Open the store at ``url``: ``sqlite:///path.db``, ``sqlite://`` (in memory),
        ``postgresql+psycopg://user:password@host:5432/db``.

        The schema must be at the revision this code needs. ``auto_upgrade`` (default: True for
        SQLite, False for PostgreSQL, whose schema ``orchestrator db upgrade`` manages) upgrades it
        on opening. ``payload_limit`` bounds each event's encoded data plus metadata and each work
        item's payload, in bytes. ``clock`` gives the recorded time of events and the time leases
        are checked against.

        Raises :class:`StoreUnavailable` (bad URL, unreachable database), :class:`StoreBusy`, or
        :class:`SchemaOutOfDate`.
        """
        if payload_limit < 1:
            raise ValueError("payload_limit must be positive")
        parsed = urls.parse(url)
        backend = open_backend(parsed, options or ConnectionOptions())
        try:
            with backend.connect() as connection:
                revision = migrate.current_revision(connection)
            if revision != migrate.HEAD:
                if not (parsed.backend == "sqlite" if auto_upgrade is None else auto_upgrade):
                    raise SchemaOutOfDate(parsed.redacted, revision, migrate.HEAD)
                with backend.schema_connection() as connection:
                    migrate.run_upgrade(connection)
        except CommandError as error:
            backend.close()
            raise StoreUnavailable(parsed.redacted, f"cannot upgrade its schema: {error}") from error
        except BaseException:
            backend.close()
            raise
        log.info("store.opened", url=parsed.redacted, backend=parsed.backend)
        return cls(backend, parsed.redacted, payload_limit=payload_limit, clock=clock)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections. The store cannot be used afterwards."""
        self._backend.close()

    # -- appending ---------------------------------------------------------------------------------

    def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[NewEvent],
        *,
        enqueue: Sequence[WorkItem] = (),
        complete: Sequence[str] = (),
        worker_id: str | None = None,
        snapshot: Snapshot | None = None,
        guard: tuple[str, int] | None = None,
    ) -> list[RecordedEvent]:
        """Append ``events`` to ``stream_id``, which must be at ``expected_version`` (0: new stream).

        In the same transaction: ``enqueue`` work items (ids already present are ignored),
        ``complete`` work items leased by ``worker_id`` (required then), save ``snapshot``. All of it
        commits, or nothing does:

        - :class:`StreamMoved` when ``guard`` = ``(guard_stream, version)`` is given and
          ``guard_stream`` (another stream, which this append does not write: what the append was
          decided from, e.g. a state machine's registry stream) is not at ``version`` (0: the stream
          does not exist). Checked in the append's transaction while it holds the append lock, which
          every append of events takes until it commits: an append that commits after the guard
          check cannot have committed before it, so the appended events never rest on a state of
          the guard stream older than the last append to it committed before them;
        - :class:`ConcurrencyError` when the stream is at another version;
        - :class:`LeaseLost` when a work item to complete is not (or no longer) leased by
          ``worker_id``: the fence against applying a result twice;
        - :class:`PayloadTooLarge`, :class:`InvalidAppend` for bad arguments, before any I/O.

        Idempotent by event id: when every event is stored in the stream already, identically
        (same ids, types, data and metadata), the append writes nothing and returns the stored
        records, whatever ``expected_version`` says: a retry after a lost connection is safe. Ids
        stored as other events, or only some of them stored, raise :class:`DuplicateEventId`.
        Event ids are unique per stream (the store does not look for them in other streams). A
        guarded append whose guard fails is replayed the same way when every event is stored
        identically (the retry of an append that committed, its guard holding then); otherwise
        the guard failure is raised as it is, never turned into another error.

        Returns the recorded events, in order.
        """
        now = self._now()
        batch = encode_append(
            stream_id,
            expected_version,
            events,
            enqueue=enqueue,
            complete=complete,
            worker_id=worker_id,
            snapshot=snapshot,
            now=now,
            payload_limit=self._payload_limit,
            guard=guard,
        )
        try:
            first = self._backend.append(batch)
        except StreamMoved as error:
            try:
                stored = self._stored_already(batch, events)
            except DuplicateEventId:
                stored = None  # the guard failed first: that is what the caller must hear about
            if stored is None:
                log.debug(
                    "store.append_guard_failed",
                    stream_id=stream_id,
                    guard_stream=error.guard_stream,
                    expected_version=error.expected_version,
                    actual_version=error.actual_version,
                )
                raise
            log.debug("store.append_replayed", stream_id=stream_id, count=len(stored))
            return stored
        except (ConcurrencyError, DuplicateEventId) as error:
            stored = self._stored_already(batch, events)
            if stored is None:
                log.debug("store.append_conflict", stream_id=stream_id, error=type(error).__name__)
                raise
            log.debug("store.append_replayed", stream_id=stream_id, count=len(stored))
            return stored
        except LeaseLost as error:
            log.info(
                "store.lease_lost", stream_id=stream_id, worker_id=error.worker_id, work_ids=error.work_ids
            )
            raise
        restore = RecordedEvent._restore
        return [
            restore(stream_id, expected_version + n, first + n - 1, e.id, e.type, e.data, e.metadata, now)
            for n, e in enumerate(events, start=1)
        ]

    def _stored_already(self, batch: AppendBatch, events: Sequence[NewEvent]) -> list[RecordedEvent] | None:
        """The stored records if every event of ``batch`` is stored in its stream already, identically.

        None when none of them is. Raises :class:`DuplicateEventId` when some ids are stored, but
        not all, or not as these events.
        """
        if not events:
            return None
        stored = {event.id: event for event in self._backend.events_by_id(batch.stream_id, batch.event_ids)}
        if not stored:
            return None
        records = [stored.get(event.id) for event in events]
        for event, record, data, metadata in zip(
            events, records, batch.event_data, batch.event_metadata, strict=True
        ):
            if (
                record is None
                or record.type != event.type
                or record.data != codec.decode(data)
                or record.metadata != codec.decode(metadata)
            ):
                found = ", ".join(f"{e.id} (version {e.version}, {e.type})" for e in stored.values())
                raise DuplicateEventId(
                    [str(i) for i in stored],
                    f"in stream {batch.stream_id!r} as {found}; this append is not a repetition of "
                    "the append that stored them (other events, or other data)",
                )
        return [record for record in records if record is not None]

    # -- reading -----------------------------------------------------------------------------------

    def read_stream(
        self, stream_id: str, from_version: int = 1, limit: int | None = None
    ) -> list[RecordedEvent]:
        """The events of ``stream_id`` from ``from_version`` on (at most ``limit``), in order."""
        if limit is not None and limit < 0:
            raise ValueError("limit must be >= 0")
        return self._backend.read_stream(stream_id, max(from_version, 1), limit)

    def stream_version(self, stream_id: str) -> int:
        """The version of the stream's last event; 0 when the stream does not exist."""
        return self._backend.stream_version(stream_id)

    def read_all(self, after_position: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        """Up to ``limit`` events of all streams with position > ``after_position``, in order.

        Positions are dense and committed in order: tail by passing the last position seen.
        """
        if limit < 1:
            raise ValueError("limit must be >= 1")
        return self._backend.read_all(after_position, limit)

    def last_position(self) -> int:
        """The position of the last event appended to any stream; 0 when the store is empty."""
        return self._backend.last_position()

    def wait_for_events(self, after_position: int, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for an event with position > ``after_position``.

        Returns True as soon as there is one (at once if there is one already), False on timeout.
        PostgreSQL: LISTEN/NOTIFY. SQLite: woken by appends of this process, polling for others'.
        """
        return self._backend.wait_for_events(after_position, max(timeout, 0.0))

    def load_snapshot(self, stream_id: str) -> Snapshot | None:
        """The latest snapshot saved for ``stream_id``, None when there is none."""
        return self._backend.load_snapshot(stream_id)

    # -- execution summaries -----------------------------------------------------------------

    def execution_summaries(
        self,
        *,
        state_machine: str | None = None,
        status: str | None = None,
        started_after: datetime | None = None,
        started_before: datetime | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[ExecutionSummary]:
        """The executions (streams ``execution:<id>``) as summarised in the append transactions,
        newest first (start time, then position), filtered by every condition given.

        ``started_after``/``started_before`` (timezone-aware, exclusive) bound the start time;
        ``offset`` skips that many, ``limit`` (None: all) bounds how many are returned. One indexed
        read: see :mod:`orchestrator.store.summaries`. Raises ValueError for a negative ``limit``
        or ``offset`` or a naive datetime.
        """
        if (limit is not None and limit < 0) or offset < 0:
            raise ValueError("limit and offset must be >= 0")
        wanted = SummaryFilter(state_machine, status, started_after, started_before)
        with self._backend.connect() as connection:
            return summaries.read(connection, wanted, limit, offset)

    def count_execution_summaries(
        self,
        *,
        state_machine: str | None = None,
        status: str | None = None,
        started_after: datetime | None = None,
        started_before: datetime | None = None,
    ) -> int:
        """How many executions :meth:`execution_summaries` would return without limit or offset."""
        wanted = SummaryFilter(state_machine, status, started_after, started_before)
        with self._backend.connect() as connection:
            return summaries.count(connection, wanted)

    # -- work queue --------------------------------------------------------------------------------

    def claim(
        self,
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        lease_seconds: float,
        now: datetime | None = None,
        *,
        history_limit: int = 0,
    ) -> list[ClaimedWork]:
        """Lease up to ``limit`` due work items of ``queues`` to ``worker_id`` for ``lease_seconds``.

        Due: ``run_at <= now`` (default: the clock). Items whose lease expired are claimable again;
        their ``attempts`` count goes on. Returned in ``run_at`` order. Concurrent claimers never
        get the same item (PostgreSQL: ``FOR UPDATE SKIP LOCKED``; SQLite: one writer).

        ``history_limit`` > 0: each item comes with the events of its stream
        (:attr:`ClaimedWork.history`, as :meth:`read_stream` would give them at the claim) when the
        stream holds at most that many, read in the claim's round trip, so that a worker meeting a
        stream for the first time need not read it (the way Temporal's task poll carries the
        workflow's history).
        """
        if limit < 1 or lease_seconds <= 0 or not queues or history_limit < 0:
            raise ValueError(
                "claim needs limit >= 1, lease_seconds > 0, history_limit >= 0 and at least one queue"
            )
        moment = self._now() if now is None else utc(now, "now")
        return self._backend.claim(
            worker_id,
            list(queues),
            limit,
            moment,
            moment + timedelta(seconds=lease_seconds),
            history_limit,
        )

    def renew(
        self, worker_id: str, work_ids: Sequence[str], lease_seconds: float, now: datetime | None = None
    ) -> list[str]:
        """Extend ``worker_id``'s unexpired leases on ``work_ids`` to ``lease_seconds`` from now.

        Returns the ids still held (sorted); the others were lost and must not be completed.
        """
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be > 0")
        if not work_ids:
            return []
        moment = self._now() if now is None else utc(now, "now")
        return self._backend.renew(
            worker_id, list(work_ids), moment, moment + timedelta(seconds=lease_seconds)
        )

    def release(self, worker_id: str, work_ids: Sequence[str]) -> None:
        """Give back ``worker_id``'s leases on ``work_ids``: the items are ready to claim again."""
        if work_ids:
            self._backend.release(worker_id, list(work_ids))

    def next_due(self, queues: Sequence[str]) -> datetime | None:
        """When the next uncompleted item of ``queues`` becomes claimable: its ``run_at``, or when its
        lease expires if a worker holds it. None when the queues hold nothing uncompleted.

        A worker with nothing to do sleeps until then (or until :meth:`wait_for_work` wakes it).
        """
        if not queues:
            raise ValueError("next_due needs at least one queue")
        return self._backend.next_due(list(queues))

    def queue_depths(self, queues: Sequence[str], now: datetime | None = None) -> dict[str, QueueDepth]:
        """Uncompleted items of each of ``queues`` (every one present, with zeros when empty): ready
        now, scheduled later, leased by a worker; as of ``now`` (default: the clock)."""
        moment = self._now() if now is None else utc(now, "now")
        found = {depth.queue: depth for depth in self._backend.queue_depths(list(queues), moment)}
        return {queue: found.get(queue, QueueDepth(queue, 0, 0, 0)) for queue in queues}

    def wait_for_work(self, queues: Sequence[str], timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for an item of ``queues`` to become claimable.

        True when one may have (enqueued, or released by a worker) since this store's previous
        call: the caller claims, and may find nothing (a wake is a hint, never a promise). The
        first call answers True at once. False on timeout. Items that fall due later (timers) or
        whose lease expires wake nobody: :meth:`next_due` says when to look. One thread at a time
        (a worker's waker thread). PostgreSQL: LISTEN/NOTIFY on ``orchestrator_work``; SQLite:
        woken by this process's writes, polling for other processes' inserts.
        """
        if not queues:
            raise ValueError("wait_for_work needs at least one queue")
        return self._backend.wait_for_work(list(queues), max(timeout, 0.0))

    # -- workers registry --------------------------------------------------------------------------

    def save_worker(self, worker: WorkerRecord) -> WorkerRecord:
        """Insert or replace ``worker``'s registry row, its heartbeat stamped with the clock's time.

        Returns the record as saved. Operational data, outside the event streams: rows are
        replaced in place and removed when the worker stops (or by :meth:`prune_workers`).
        """
        saved = dataclasses.replace(worker, heartbeat_at=self._now())
        self._backend.save_worker(saved)
        return saved

    def remove_worker(self, worker_id: str) -> None:
        """Delete ``worker_id``'s registry row (a worker stopping cleanly)."""
        self._backend.remove_worker(worker_id)

    def prune_workers(self, older_than: timedelta) -> None:
        """Delete the rows of workers silent for longer than ``older_than`` (killed, machine lost)."""
        self._backend.prune_workers(self._now() - older_than)

    def workers(self) -> list[WorkerRecord]:
        """Every worker in the registry, oldest first (the silent ones too: compare ``heartbeat_at``)."""
        return self._backend.workers()

    def now(self) -> datetime:
        """The store's clock: the time leases and heartbeats are stamped and checked with."""
        return self._now()

    # -- time --------------------------------------------------------------------------------------

    def _now(self) -> datetime:
        return utc(self._clock(), "the clock's time")
