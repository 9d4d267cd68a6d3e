"""The SQLite backend: the embedded default, one writer at a time.

SQLite serialises writers on the whole database file, and a transaction that reads before it writes
can fail at once with "database is locked" when it tries to upgrade its lock, whatever the busy
timeout. So this backend:

- opens the file in WAL mode (readers never block the writer, nor the writer the readers), and
  checkpoints it on a thread of its own (:mod:`~orchestrator.store.backends.checkpoints`);
- writes through one connection per process, behind a lock, always in ``BEGIN IMMEDIATE``
  transactions, which take the write lock up front and wait up to the busy timeout for another
  process to release it; past that it raises :class:`StoreBusy`, which says what is going on;
- reads through a pool of other connections, in autocommit (each statement sees one snapshot);
- assigns positions itself (last + 1, ...) inside the write transaction: with one writer and rows
  never deleted, positions are dense and in commit order;
- wakes ``wait_for_events`` callers at once for appends made by this process, and polls for the
  appends of other processes; ``wait_for_work`` the same way, for items enqueued or released.

An in-memory database (``sqlite://`` or ``sqlite:///:memory:``) lives in one connection, shared by
all threads behind the lock.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from itertools import repeat
from operator import attrgetter
from typing import Any

import structlog
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import ConnectionPoolEntry, QueuePool, StaticPool

from orchestrator.store import codec, sqlfile, summaries
from orchestrator.store.backends import AppendBatch, ConnectionOptions
from orchestrator.store.backends.checkpoints import WalCheckpointer
from orchestrator.store.errors import (
    ConcurrencyError,
    DuplicateEventId,
    LeaseLost,
    StoreBusy,
    StoreError,
    StoreUnavailable,
    StreamMoved,
)
from orchestrator.store.model import ClaimedWork, QueueDepth, RecordedEvent, Snapshot, WorkerRecord
from orchestrator.store.urls import DatabaseURL

log = structlog.get_logger(__name__)

Q = sqlfile.load(__package__ or "orchestrator.store.backends", "sqlite.sql")

_decode = codec.decode
_json = codec.dumps
_from_iso = datetime.fromisoformat
_restore = RecordedEvent._restore
_restore_raw = RecordedEvent._restore_raw
_UUID = uuid.UUID
_uuid_bytes = attrgetter("bytes")


def _driver(connection: Connection) -> sqlite3.Connection:
    """The sqlite3 connection under a SQLAlchemy one."""
    driver = connection.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    return driver


def _iso(moment: datetime) -> str:
    """A UTC datetime as fixed-width ISO 8601 text (compares correctly as text)."""
    return moment.isoformat(timespec="microseconds")


class SQLiteBackend:
    """Events, work items and snapshots in one SQLite file (or in memory)."""

    def __init__(self, url: DatabaseURL, options: ConnectionOptions) -> None:
        self._redacted = url.redacted
        self._path = url.sqlite_path
        self._busy_timeout = options.busy_timeout
        self._poll_interval = options.poll_interval
        self._synchronous = options.sqlite_synchronous.upper()
        self._lock = threading.Lock()
        self._appended = threading.Condition()
        self._generation = 0
        self._work_generation = 0
        self._work_mark: int | None = None
        connect_args = {"timeout": options.busy_timeout, "check_same_thread": False, "isolation_level": None}
        if self._path is None:
            self._writer_engine = create_engine(url.url, connect_args=connect_args, poolclass=StaticPool)
            self._reader_engine = self._writer_engine
        else:
            self._writer_engine = create_engine(
                url.url, connect_args=connect_args, poolclass=QueuePool, pool_size=1, max_overflow=0
            )
            self._reader_engine = create_engine(
                url.url,
                connect_args=connect_args,
                poolclass=QueuePool,
                pool_size=options.pool_size,
                max_overflow=options.pool_size * 2,
            )
        for engine in {self._writer_engine, self._reader_engine}:
            event.listen(engine, "connect", self._configure_connection)
        self._checkpointer: WalCheckpointer | None = None
        if self._path is not None and options.sqlite_checkpoint_interval > 0:
            self._checkpointer = WalCheckpointer(
                self._path,
                interval=options.sqlite_checkpoint_interval,
                restart_frames=options.sqlite_checkpoint_pages,
                busy_timeout=options.busy_timeout,
                writer_lock=self._lock,
            )
            event.listen(self._writer_engine, "connect", self._configure_writer)
        self._writer: Connection | None = None

    # -- connections -------------------------------------------------------------------------------

    def _configure_connection(self, dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        """Pragmas of every new connection: WAL, the busy timeout, the durability level."""
        cursor = dbapi_connection.cursor()
        try:
            if self._path is not None:
                cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
            cursor.execute(f"PRAGMA synchronous = {self._synchronous}")
        finally:
            cursor.close()

    def _configure_writer(self, dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        """The writer leaves checkpoints to the checkpointer, up to a fallback size of the WAL."""
        assert self._checkpointer is not None
        dbapi_connection.execute(f"PRAGMA wal_autocheckpoint = {self._checkpointer.autocheckpoint_pages}")

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """Turn driver errors (raw, or wrapped by SQLAlchemy) into store errors that say what to do."""
        try:
            yield
        except DBAPIError as error:
            if isinstance(error.orig, sqlite3.Error):
                raise self._translate(error.orig) from error
            raise StoreUnavailable(self._redacted, str(error.orig)) from error
        except sqlite3.Error as error:
            raise self._translate(error) from error

    def _translate(self, error: sqlite3.Error) -> StoreError:
        name = getattr(error, "sqlite_errorname", "")
        message = str(error)
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in message:
            return StoreBusy(self._redacted, self._busy_timeout)
        if isinstance(error, sqlite3.IntegrityError) and "events.stream_key, events.id" in message:
            return DuplicateEventId([], "in this stream")
        if "no such table" in message:
            return StoreUnavailable(
                self._redacted, "it has no event store schema: run `orchestrator db upgrade`"
            )
        if "unable to open database file" in message:
            return StoreUnavailable(
                self._redacted, "cannot open the SQLite file (does its directory exist, is it writable?)"
            )
        return StoreUnavailable(self._redacted, message)

    @contextmanager
    def _locked(self) -> Iterator[Connection]:
        """The writer connection, held by this thread only."""
        if not self._lock.acquire(timeout=self._busy_timeout):
            raise StoreBusy(self._redacted, self._busy_timeout)
        try:
            with self._translated():
                if self._writer is None:
                    self._writer = self._writer_engine.connect()
                yield self._writer
        finally:
            self._lock.release()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``) on the writer's driver connection.

        Statements run on the driver connection directly: SQLAlchemy's per-statement bookkeeping
        costs more than SQLite's own work for the small statements of an append.
        """
        with self._locked() as connection:
            driver = _driver(connection)
            try:
                driver.execute("BEGIN IMMEDIATE")
                yield driver
                driver.commit()
            except BaseException:
                self._rollback(connection, driver)
                raise
            if self._checkpointer is not None:
                self._checkpointer.committed()

    def _rollback(self, connection: Connection, driver: sqlite3.Connection) -> None:
        """Roll back; a connection that cannot even do that is dropped (the next write reconnects)."""
        try:
            driver.rollback()
        except sqlite3.Error:
            log.warning("store.sqlite_writer_dropped", url=self._redacted)
            connection.invalidate()
            connection.close()
            self._writer = None

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A driver connection for reads, in autocommit (the shared one, locked, when in memory)."""
        if self._path is None:
            with self._locked() as connection:
                yield _driver(connection)
            return
        with self._translated(), self._reader_engine.connect() as connection:
            yield _driver(connection)

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection for reads (the shared one, locked, for an in-memory database)."""
        if self._path is None:
            with self._locked() as connection:
                try:
                    yield connection
                finally:
                    connection.rollback()
            return
        with self._translated(), self._reader_engine.connect() as connection:
            yield connection

    @contextmanager
    def schema_connection(self) -> Iterator[Connection]:
        """A write transaction for migrations: the write lock keeps concurrent upgraders in line."""
        with self._locked() as connection:
            try:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
                yield connection
                connection.commit()
            except BaseException:
                connection.rollback()
                raise

    # -- appends -------------------------------------------------------------------------------

    def append(self, batch: AppendBatch) -> int:
        """Commit ``batch``; see :class:`~orchestrator.store.backends.Backend`.

        A guard is checked first, in the write transaction: it holds the one write lock, so no
        append to the guard stream commits between the check and this commit.
        """
        stream_id = batch.stream_id
        expected = batch.expected_version
        now = _iso(batch.now)
        count = len(batch.event_ids)
        guard = batch.guard
        with self._write() as connection:
            if guard is not None:
                guard_stream, guard_version = guard
                actual = connection.execute(Q["stream_version"], {"stream_id": guard_stream}).fetchone()[0]
                if actual != guard_version:
                    raise StreamMoved(stream_id, guard_stream, guard_version, int(actual))
            key, version, last = connection.execute(Q["append_head"], {"stream_id": stream_id}).fetchone()
            if version != expected:
                raise ConcurrencyError(stream_id, expected, version)
            if batch.complete:
                self._complete(connection, batch, now)
            if count:
                # The rows, (position, stream_id, version, id, type, data, metadata, recorded_at,
                # stream_key), zipped in C: no Python code runs per event here.
                connection.executemany(
                    Q["insert_event"],
                    zip(
                        range(last + 1, last + count + 1),
                        repeat(stream_id, count),
                        range(expected + 1, expected + count + 1),
                        map(_uuid_bytes, batch.event_ids),
                        batch.event_types,
                        batch.event_data,
                        batch.event_metadata,
                        repeat(now, count),
                        repeat(last + 1 if key is None else key, count),
                        strict=True,
                    ),
                )
            if stream_id.startswith(summaries.STREAM_PREFIX):
                self._summarise(connection, batch, last, now)
            if batch.enqueue:
                connection.executemany(
                    Q["enqueue_work"],
                    [
                        {
                            "id": work.id,
                            "queue": work.queue,
                            "stream_id": work.stream_id,
                            "kind": work.kind,
                            "payload": work.payload,
                            "run_at": _iso(work.run_at),
                            "now": now,
                        }
                        for work in batch.enqueue
                    ],
                )
            if batch.snapshot_version is not None:
                connection.execute(
                    Q["save_snapshot"],
                    {
                        "stream_id": stream_id,
                        "version": batch.snapshot_version,
                        "state": batch.snapshot_state,
                        "now": now,
                    },
                )
        if batch.event_ids or batch.enqueue:
            with self._appended:
                self._generation += bool(batch.event_ids)
                self._work_generation += bool(batch.enqueue)
                self._appended.notify_all()
        return int(last) + 1 if batch.event_ids else 0

    def _summarise(self, connection: sqlite3.Connection, batch: AppendBatch, last: int, now: str) -> None:
        """Keep the execution summary of ``batch``'s stream, in its transaction.

        In Python rather than by a trigger: a row trigger would cost every event of every stream a
        call of its sub-program (see migration 0003); this costs other streams one prefix test.
        """
        expected = batch.expected_version
        for n, (event_type, data, metadata) in enumerate(
            zip(batch.event_types, batch.event_data, batch.event_metadata, strict=True), start=1
        ):
            if event_type == summaries.START_EVENT:
                if expected + n == 1:
                    connection.execute(
                        Q["summarise_start"],
                        {
                            "stream_id": batch.stream_id,
                            "metadata": metadata,
                            "data": data,
                            "recorded_at": now,
                            "position": last + n,
                        },
                    )
            elif (status := summaries.STATUS_EVENTS.get(event_type)) is not None:
                connection.execute(
                    Q["summarise_status"],
                    {
                        "stream_id": batch.stream_id,
                        "status": status,
                        "stops": event_type != summaries.REDRIVE_EVENT,
                        "data": data,
                        "recorded_at": now,
                        "version": expected + n,
                    },
                )

    def _complete(self, connection: sqlite3.Connection, batch: AppendBatch, now: str) -> None:
        done = connection.execute(
            Q["complete_work"],
            {"ids": _json(list(batch.complete)), "worker_id": batch.worker_id, "now": now},
        ).fetchall()
        lost = set(batch.complete).difference(row[0] for row in done)
        if lost:
            raise LeaseLost(batch.worker_id or "", sorted(lost))

    # -- reads ---------------------------------------------------------------------------------

    def read_stream(self, stream_id: str, from_version: int, limit: int | None) -> list[RecordedEvent]:
        """Events of ``stream_id`` from ``from_version``, in order."""
        with self._read() as connection, codec.bulk():
            rows = connection.execute(
                Q["read_stream"],
                {
                    "stream_id": stream_id,
                    "from_version": from_version,
                    "limit": -1 if limit is None else limit,
                },
            ).fetchall()
            return [
                _restore_raw(stream_id, v, p, i, t, _decode(d), m, _from_iso(r))
                for v, p, i, t, d, m, r in rows
            ]

    def read_all(self, after_position: int, limit: int) -> list[RecordedEvent]:
        """Events after ``after_position``, in position order."""
        with self._read() as connection, codec.bulk():
            rows = connection.execute(
                Q["read_all"], {"after_position": after_position, "limit": limit}
            ).fetchall()
            return [
                _restore_raw(s, v, p, i, t, _decode(d), m, _from_iso(r)) for s, v, p, i, t, d, m, r in rows
            ]

    def events_by_id(self, stream_id: str, event_ids: Sequence[uuid.UUID]) -> list[RecordedEvent]:
        """The events of ``stream_id`` among ``event_ids``."""
        found = []
        with self._read() as connection:
            for event_id in event_ids:
                row = connection.execute(
                    Q["event_by_id"], {"stream_id": stream_id, "id": event_id.bytes}
                ).fetchone()
                if row is not None:
                    s, v, p, i, t, d, m, r = row
                    found.append(_restore(s, v, p, _UUID(bytes=i), t, _decode(d), _decode(m), _from_iso(r)))
        return found

    def stream_version(self, stream_id: str) -> int:
        """Version of the last event of ``stream_id`` (0: none)."""
        with self._read() as connection:
            return int(connection.execute(Q["stream_version"], {"stream_id": stream_id}).fetchone()[0])

    def last_position(self) -> int:
        """Position of the last event (0: none)."""
        with self._read() as connection:
            return int(connection.execute(Q["last_position"]).fetchone()[0])

    def wait_for_events(self, after_position: int, timeout: float) -> bool:
        """Wait for an event after ``after_position``: woken by this process's appends, else polling."""
        deadline = time.monotonic() + timeout
        while True:
            generation = self._generation
            if self.last_position() > after_position:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._appended:
                self._appended.wait_for(
                    partial(self._appended_since, generation), min(remaining, self._poll_interval)
                )

    def _appended_since(self, generation: int) -> bool:
        return self._generation != generation

    def load_snapshot(self, stream_id: str) -> Snapshot | None:
        """The latest snapshot of ``stream_id``."""
        with self._read() as connection:
            row = connection.execute(Q["load_snapshot"], {"stream_id": stream_id}).fetchone()
        return None if row is None else Snapshot(stream_id, row[0], _decode(row[1]))

    # -- work queue ----------------------------------------------------------------------------

    def claim(  # noqa: PLR0917 - the backend protocol
        self,
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        now: datetime,
        lease_until: datetime,
        history_limit: int,
    ) -> list[ClaimedWork]:
        """Lease due items to ``worker_id`` (inside the write lock: no two claimers see a row), and
        read their streams' events in the same transaction when ``history_limit`` > 0."""
        histories: dict[str, tuple[RecordedEvent, ...] | None] = {}
        with self._write() as connection:
            rows = connection.execute(
                Q["claim_work"],
                {
                    "worker_id": worker_id,
                    "queues": _json(list(queues)),
                    "now": _iso(now),
                    "lease_until": _iso(lease_until),
                    "limit": limit,
                },
            ).fetchall()
            for stream_id in {row[2] for row in rows} if history_limit > 0 else ():
                events = connection.execute(
                    Q["read_stream"], {"stream_id": stream_id, "from_version": 1, "limit": history_limit + 1}
                ).fetchall()
                histories[stream_id] = (
                    tuple(
                        _restore_raw(stream_id, v, p, i, t, _decode(d), m, _from_iso(r))
                        for v, p, i, t, d, m, r in events
                    )
                    if len(events) <= history_limit
                    else None
                )
        claimed = [
            ClaimedWork(i, q, s, k, _decode(p), _from_iso(r), a, _from_iso(e), histories.get(s))
            for i, q, s, k, p, r, a, e in rows
        ]
        claimed.sort(key=lambda work: (work.run_at, work.id))
        return claimed

    def renew(
        self, worker_id: str, work_ids: Sequence[str], now: datetime, lease_until: datetime
    ) -> list[str]:
        """Extend the leases ``worker_id`` still holds."""
        with self._write() as connection:
            renewed = connection.execute(
                Q["renew_work"],
                {
                    "ids": _json(list(work_ids)),
                    "worker_id": worker_id,
                    "now": _iso(now),
                    "lease_until": _iso(lease_until),
                },
            ).fetchall()
        return sorted(row[0] for row in renewed)

    def release(self, worker_id: str, work_ids: Sequence[str]) -> None:
        """Give back the leases ``worker_id`` holds."""
        with self._write() as connection:
            connection.execute(Q["release_work"], {"ids": _json(list(work_ids)), "worker_id": worker_id})
        with self._appended:
            self._work_generation += 1
            self._appended.notify_all()

    def next_due(self, queues: Sequence[str]) -> datetime | None:
        """When the next item of ``queues`` becomes claimable."""
        with self._read() as connection:
            row = connection.execute(Q["next_due"], {"queues": _json(list(queues))}).fetchone()
        return None if row is None or row[0] is None else _from_iso(row[0])

    def queue_depths(self, queues: Sequence[str], now: datetime) -> list[QueueDepth]:
        """Counts of uncompleted items per queue."""
        with self._read() as connection:
            rows = connection.execute(
                Q["queue_depths"], {"queues": _json(list(queues)), "now": _iso(now)}
            ).fetchall()
        return [QueueDepth(q, r, s, h) for q, r, s, h in rows]

    def wait_for_work(self, queues: Sequence[str], timeout: float) -> bool:
        """Wait for an item enqueued or released: at once for this process's writes, polling for
        other processes' inserts (each ``poll_interval``). ``queues`` are not told apart: a wake
        for another queue costs the caller one empty claim."""
        del queues
        deadline = time.monotonic() + timeout
        while True:
            generation = self._work_generation
            with self._read() as connection:
                mark = int(connection.execute(Q["work_mark"]).fetchone()[0])
            if mark != self._work_mark:
                self._work_mark = mark
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._appended:
                if self._appended.wait_for(
                    partial(self._work_since, generation), min(remaining, self._poll_interval)
                ):
                    return True

    def _work_since(self, generation: int) -> bool:
        return self._work_generation != generation

    # -- workers registry ------------------------------------------------------------------------

    def save_worker(self, worker: WorkerRecord) -> None:
        """Insert or replace the row of ``worker.id``."""
        with self._write() as connection:
            connection.execute(
                Q["save_worker"],
                {
                    "id": worker.id,
                    "host": worker.host,
                    "pid": worker.pid,
                    "queues": _json(list(worker.queues)),
                    "concurrency": worker.concurrency,
                    "started_at": _iso(worker.started_at),
                    "now": _iso(worker.heartbeat_at),
                    "current": _json(list(worker.current)),
                },
            )

    def remove_worker(self, worker_id: str) -> None:
        """Delete the row of ``worker_id``."""
        with self._write() as connection:
            connection.execute(Q["remove_worker"], {"id": worker_id})

    def prune_workers(self, before: datetime) -> None:
        """Delete rows whose heartbeat is older than ``before``."""
        with self._write() as connection:
            connection.execute(Q["prune_workers"], {"before": _iso(before)})

    def workers(self) -> list[WorkerRecord]:
        """Every row, oldest first."""
        with self._read() as connection:
            rows = connection.execute(Q["list_workers"]).fetchall()
        return [
            WorkerRecord(i, h, p, tuple(_decode(q)), c, _from_iso(s), _from_iso(b), tuple(_decode(cur)))
            for i, h, p, q, c, s, b, cur in rows
        ]

    def close(self) -> None:
        """Stop the checkpointer (after its last checkpoint), close all connections."""
        if self._checkpointer is not None:
            self._checkpointer.close()
        with self._lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        self._reader_engine.dispose()
        self._writer_engine.dispose()
