"""The PostgreSQL backend: many workers, one round trip per operation.

Connections run in autocommit and every operation is one statement, so one transaction and one
round trip. An append is a call of the ``orchestrator_append_v4`` database function (defined by the
migrations), which takes the append lock, checks the guard stream's version (when the append has a
guard), the stream version and the leases, inserts the
events, work items and snapshot, and notifies listeners, all in that statement's transaction. When
the lock was free it commits synchronously: durable in one round trip. When it had to wait for the
lock it commits asynchronously, so the lock is not held while the commit waits for the disk, and the
backend waits for durability with a second, synchronous round trip (``flush``) before it answers:
appenders that queued behind each other share those fsyncs (see migrations 0002 and 0005).

Gap-free global order: the function holds a transaction-level advisory lock from before it reads
the last position until commit, so positions are taken and committed in the same order (the
``eventsourcing`` library serialises its inserts the same way, with a table lock). Claims use
``FOR UPDATE SKIP LOCKED``. ``wait_for_events`` listens on the ``orchestrator_events`` channel,
which the append function notifies with its last position; ``wait_for_work`` listens on
``orchestrator_work``, which a trigger on ``work_items`` notifies with the queue of each item that
becomes claimable (enqueued, or released by a worker).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Generator, Iterator, Sequence
from contextlib import closing, contextmanager
from datetime import datetime
from operator import attrgetter, itemgetter
from typing import Any, cast

import psycopg
import structlog
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import PoolProxiedConnection

from orchestrator.store import codec, sqlfile
from orchestrator.store.backends import AppendBatch, ConnectionOptions
from orchestrator.store.errors import (
    ConcurrencyError,
    DuplicateEventId,
    LeaseLost,
    StoreError,
    StoreUnavailable,
    StreamMoved,
)
from orchestrator.store.model import ClaimedWork, QueueDepth, RecordedEvent, Snapshot, WorkerRecord
from orchestrator.store.urls import DatabaseURL

log = structlog.get_logger(__name__)

Q = sqlfile.load(__package__ or "orchestrator.store.backends", "postgresql.sql")

_restore = RecordedEvent._restore
_restore_raw = RecordedEvent._restore_raw
_restore_rows = RecordedEvent._restore_rows
_decode = codec.decode
_first = itemgetter(0)
_version = attrgetter("version")

#: Versions of a stream read by read_stream's first, prepared statement; the rest is streamed.
_READ_AHEAD = 1000
#: Rows per chunk of a streamed read.
_CHUNK = 1000
#: The largest version (an ``integer`` column).
_MAX_VERSION = 2**31 - 1

#: SQLSTATEs raised by ``orchestrator_append_v1`` and ``_v4`` (class "OR" is not used by PostgreSQL).
_VERSION_CONFLICT = "OR001"
_LEASE_LOST = "OR002"
_GUARD_FAILED = "OR003"
_UNIQUE_VIOLATION = "23505"


class PostgresBackend:
    """Events, work items and snapshots in a PostgreSQL database."""

    def __init__(self, url: DatabaseURL, options: ConnectionOptions) -> None:
        self._redacted = url.redacted
        self._engine = create_engine(
            url.url,
            isolation_level="AUTOCOMMIT",
            pool_size=options.pool_size,
            max_overflow=options.pool_size * 2,
            connect_args={
                "connect_timeout": max(1, round(options.connect_timeout)),
                # UTC datetimes back; READ COMMITTED whatever the server's default (the append
                # function relies on a fresh snapshot per statement).
                "options": r"-c TimeZone=UTC -c default_transaction_isolation=read\ committed",
                "application_name": "orchestrator",
            },
        )
        self._listen_lock = threading.Lock()
        self._listener: PoolProxiedConnection | None = None
        self._work_lock = threading.Lock()
        self._work_listener: PoolProxiedConnection | None = None

    # -- connections -------------------------------------------------------------------------------

    def _translate(self, error: psycopg.Error) -> StoreError | None:
        """The store error for a driver error; None when it is not one of ours (a bug: re-raise)."""
        state = error.sqlstate or ""
        if state == _VERSION_CONFLICT:
            # Raised by orchestrator_append_v1; append() adds the stream and versions.
            return ConcurrencyError("", -1, int(error.diag.message_detail or "-1"))
        if state == _LEASE_LOST:
            return LeaseLost("", json.loads(error.diag.message_detail or "[]"))
        if state == _GUARD_FAILED:
            # Raised by orchestrator_append_v4; append() adds the streams and the expected version.
            return StreamMoved("", "", -1, int(error.diag.message_detail or "-1"))
        if state == _UNIQUE_VIOLATION and error.diag.constraint_name == "events_stream_id_key":
            return DuplicateEventId([], "in this stream")
        if state in ("42P01", "42883"):  # undefined table / function
            return StoreUnavailable(
                self._redacted, "it has no (or an old) event store schema: run `orchestrator db upgrade`"
            )
        if state.startswith("08") or state == "57P01" or isinstance(error, psycopg.OperationalError):
            return StoreUnavailable(self._redacted, _first_line(str(error)))
        return None

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """Turn driver errors (raw, or wrapped by SQLAlchemy) into store errors."""
        try:
            yield
        except DBAPIError as error:
            orig = error.orig
            translated = self._translate(orig) if isinstance(orig, psycopg.Error) else None
            if translated is None and error.connection_invalidated:
                translated = StoreUnavailable(self._redacted, _first_line(str(orig)))
            if translated is None:
                raise
            raise translated from error
        except psycopg.Error as error:
            translated = self._translate(error)
            if translated is None:
                raise
            raise translated from error

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A pooled connection (autocommit)."""
        with self._translated(), self._engine.connect() as connection:
            yield connection

    @contextmanager
    def _driver(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled driver connection (autocommit): statements run on psycopg directly.

        SQLAlchemy's per-statement bookkeeping costs more than a round trip's worth of Python for
        the one-statement operations of this backend, so this checks a connection out of its pool
        without the ``Connection`` wrapper; psycopg prepares repeated statements itself.
        """
        with self._translated():
            proxied = self._engine.raw_connection()
            try:
                driver = _psycopg(proxied)
                try:
                    yield driver
                except psycopg.Error:
                    if driver.broken or driver.closed:
                        # The server went away (restart, failover, killed backend): this connection
                        # is dead and the idle ones in the pool most likely too. Start afresh.
                        log.warning("store.connections_reset", url=self._redacted)
                        proxied.invalidate()
                        self._engine.dispose()
                    raise
            finally:
                proxied.close()  # back to the pool (an invalidated one is discarded)

    @contextmanager
    def schema_connection(self) -> Iterator[Connection]:
        """A transaction holding the schema advisory lock, for migrations (DDL is transactional)."""
        with self._translated(), self._engine.connect() as autocommit:
            connection = autocommit.execution_options(isolation_level="READ COMMITTED")
            with connection.begin():
                connection.exec_driver_sql(Q["schema_lock"])
                yield connection

    # -- appends -------------------------------------------------------------------------------

    def append(self, batch: AppendBatch) -> int:
        """Commit ``batch`` in one call of ``orchestrator_append_v4``; durable when this returns.

        The function commits synchronously (durable when it returns) when the append lock was
        free, else asynchronously (not holding the lock during the fsync), returning the first
        position negated: then ``flush`` waits for durability, sharing the fsync with the other
        appenders that queued for the lock. A guard is checked by the function, under the lock.
        """
        guard = batch.guard
        params = {
            "stream_id": batch.stream_id,
            "expected_version": batch.expected_version,
            "now": batch.now,
            "events": _events_document(batch),
            "worker_id": batch.worker_id,
            "complete": list(batch.complete),
            "enqueue": _enqueue_document(batch),
            "snapshot_version": batch.snapshot_version,
            "snapshot_state": batch.snapshot_state,
            "guard_stream": None if guard is None else guard[0],
            "guard_version": None if guard is None else guard[1],
        }
        try:
            with self._driver() as driver:
                row = driver.execute(Q["append"], params).fetchone()
                assert row is not None
                first = int(row[0])
                if first < 0:  # committed asynchronously: durable before acknowledged
                    driver.execute(Q["flush"])
        except ConcurrencyError as error:
            raise ConcurrencyError(batch.stream_id, batch.expected_version, error.actual_version) from None
        except LeaseLost as error:
            raise LeaseLost(batch.worker_id or "", error.work_ids) from None
        except StreamMoved as error:
            assert guard is not None
            raise StreamMoved(batch.stream_id, guard[0], guard[1], error.actual_version) from None
        return -first if first < 0 else first

    # -- reads ---------------------------------------------------------------------------------

    def read_stream(self, stream_id: str, from_version: int, limit: int | None) -> list[RecordedEvent]:
        """Events of ``stream_id`` from ``from_version``, in order.

        The first ``_READ_AHEAD`` versions come from one prepared statement (most streams end
        there); the rest of a longer stream is streamed in chunks (libpq's chunked rows mode), each
        restored while the server reads and sends the next, instead of all of it waiting for the last
        row. Two statements, two snapshots: events are never changed or removed, so the second only
        sees the stream as it is a little later (any event appended meanwhile comes in too).
        """
        last = _MAX_VERSION if limit is None else min(from_version + limit - 1, _MAX_VERSION)
        if last < from_version:
            return []
        first_last = min(from_version + _READ_AHEAD - 1, last)
        params = {"stream_id": stream_id, "first": from_version, "last": first_last}
        with self._driver() as driver, codec.bulk():
            cursor = driver.cursor(binary=True)
            rows = cursor.execute(Q["read_stream"], params, prepare=True).fetchall()
            rows.sort(key=_first)
            events = _restore_rows(stream_id, rows)
            if first_last < last and rows and rows[-1][0] == first_last:  # the stream goes on
                params.update(first=first_last + 1, last=last)
                # A generator: closing it (on an error here) cancels the rest of the query.
                rest = cast(Generator[Any], cursor.stream(Q["read_stream"], params, size=_CHUNK))
                with closing(rest):
                    more = _restore_rows(stream_id, rest)
                more.sort(key=_version)
                events += more
            return events

    def read_all(self, after_position: int, limit: int) -> list[RecordedEvent]:
        """Events after ``after_position``, in position order."""
        with self._driver() as driver, codec.bulk():
            rows = (
                driver.cursor(binary=True)
                .execute(Q["read_all"], {"after_position": after_position, "limit": limit}, prepare=True)
                .fetchall()
            )
            return [_restore_raw(s, v, p, i, t, _decode(d), m, r) for s, v, p, i, t, d, m, r in rows]

    def events_by_id(self, stream_id: str, event_ids: Sequence[uuid.UUID]) -> list[RecordedEvent]:
        """The events of ``stream_id`` among ``event_ids``."""
        with self._driver() as driver:
            rows = driver.execute(
                Q["events_by_id"], {"stream_id": stream_id, "ids": list(event_ids)}
            ).fetchall()
            if rows:  # the replay of an append: what it answers with must be durable too
                driver.execute(Q["flush"])
        return [_restore(s, v, p, i, t, _decode(d), _decode(m), r) for s, v, p, i, t, d, m, r in rows]

    def stream_version(self, stream_id: str) -> int:
        """Version of the last event of ``stream_id`` (0: none)."""
        with self._driver() as driver:
            row = driver.execute(Q["stream_version"], {"stream_id": stream_id}).fetchone()
        assert row is not None
        return int(row[0])

    def last_position(self) -> int:
        """Position of the last event (0: none)."""
        with self._driver() as driver:
            row = driver.execute(Q["last_position"]).fetchone()
        assert row is not None
        return int(row[0])

    def wait_for_events(self, after_position: int, timeout: float) -> bool:
        """Wait on LISTEN/NOTIFY (one thread at a time per store; the others poll, as they do
        when the listening connection breaks)."""
        deadline = time.monotonic() + timeout
        if not self._listen_lock.acquire(blocking=False):
            return self._poll(after_position, deadline)  # another thread holds the listener
        try:
            try:
                listener = self._listening()
                # Notifications that arrived before this call are stale: the check below covers them.
                for _ in listener.notifies(timeout=0):
                    pass
            except psycopg.Error as error:
                self._drop_listener(error)
                return self._poll(after_position, deadline)
            if self.last_position() > after_position:
                return True
            while (remaining := deadline - time.monotonic()) > 0:
                try:
                    for notify in listener.notifies(timeout=remaining, stop_after=1):
                        if _position(notify.payload) > after_position:
                            return True
                except psycopg.Error as error:
                    self._drop_listener(error)
                    return self._poll(after_position, deadline)
            return False
        finally:
            self._listen_lock.release()

    def _listening(self) -> psycopg.Connection[Any]:
        """The connection LISTENing on ``orchestrator_events`` (checked out of the pool for good)."""
        if self._listener is None:
            with self._translated():
                proxied = self._engine.raw_connection()
                try:
                    driver = _psycopg(proxied)
                    driver.autocommit = True
                    driver.execute(Q["listen"])
                except BaseException:
                    proxied.invalidate()
                    raise
            self._listener = proxied
        return _psycopg(self._listener)

    def _drop_listener(self, error: Exception) -> None:
        log.warning("store.listener_lost", url=self._redacted, error=_first_line(str(error)))
        if self._listener is not None:
            self._listener.invalidate()
            self._listener = None

    def _poll(self, after_position: int, deadline: float) -> bool:
        while True:
            if self.last_position() > after_position:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(remaining, 0.2))

    def load_snapshot(self, stream_id: str) -> Snapshot | None:
        """The latest snapshot of ``stream_id``."""
        with self._driver() as driver:
            row = driver.execute(Q["load_snapshot"], {"stream_id": stream_id}).fetchone()
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
        """Lease due items to ``worker_id`` with ``FOR UPDATE SKIP LOCKED`` (and read their streams'
        events in the same statement when ``history_limit`` > 0)."""
        params = {
            "worker_id": worker_id,
            "queues": list(queues),
            "now": now,
            "lease_until": lease_until,
            "limit": limit,
        }
        with self._driver() as driver:
            rows = driver.execute(Q["claim_work"], {**params, "history_limit": history_limit}).fetchall()
        claimed = [
            ClaimedWork(i, q, s, k, _decode(p), r, a, e, None if h is None else _history(s, h))
            for i, q, s, k, p, r, a, e, h in rows
        ]
        claimed.sort(key=lambda work: (work.run_at, work.id))
        return claimed

    def renew(
        self, worker_id: str, work_ids: Sequence[str], now: datetime, lease_until: datetime
    ) -> list[str]:
        """Extend the leases ``worker_id`` still holds."""
        with self._driver() as driver:
            renewed = driver.execute(
                Q["renew_work"],
                {"ids": list(work_ids), "worker_id": worker_id, "now": now, "lease_until": lease_until},
            ).fetchall()
        return sorted(row[0] for row in renewed)

    def release(self, worker_id: str, work_ids: Sequence[str]) -> None:
        """Give back the leases ``worker_id`` holds."""
        with self._driver() as driver:
            driver.execute(Q["release_work"], {"ids": list(work_ids), "worker_id": worker_id})

    def next_due(self, queues: Sequence[str]) -> datetime | None:
        """When the next item of ``queues`` becomes claimable."""
        with self._driver() as driver:
            row = driver.execute(Q["next_due"], {"queues": list(queues)}).fetchone()
        return None if row is None else row[0]

    def queue_depths(self, queues: Sequence[str], now: datetime) -> list[QueueDepth]:
        """Counts of uncompleted items per queue."""
        with self._driver() as driver:
            rows = driver.execute(Q["queue_depths"], {"queues": list(queues), "now": now}).fetchall()
        return [QueueDepth(q, r, s, h) for q, r, s, h in rows]

    def wait_for_work(self, queues: Sequence[str], timeout: float) -> bool:
        """Wait on LISTEN ``orchestrator_work`` for a notification naming one of ``queues``.

        Notifications queue up on the listening connection between calls, so none is missed; a
        listener (re)connected by this call may have missed some, so it answers True at once.
        """
        deadline = time.monotonic() + timeout
        if not self._work_lock.acquire(timeout=max(timeout, 0.0)):
            return False
        try:
            fresh = self._work_listener is None
            try:
                listener = self._work_listening()
                if fresh:
                    return True
                wanted = set(queues)
                while (remaining := deadline - time.monotonic()) > 0:
                    for notify in listener.notifies(timeout=remaining, stop_after=1):
                        if notify.payload in wanted:
                            return True
                return False
            except psycopg.Error as error:
                self._drop_work_listener(error)
                translated = self._translate(error)
                raise translated or StoreUnavailable(self._redacted, _first_line(str(error))) from error
        finally:
            self._work_lock.release()

    def _work_listening(self) -> psycopg.Connection[Any]:
        """The connection LISTENing on ``orchestrator_work`` (checked out of the pool for good)."""
        if self._work_listener is None:
            with self._translated():
                proxied = self._engine.raw_connection()
                try:
                    driver = _psycopg(proxied)
                    driver.autocommit = True
                    driver.execute(Q["listen_work"])
                except BaseException:
                    proxied.invalidate()
                    raise
            self._work_listener = proxied
        return _psycopg(self._work_listener)

    def _drop_work_listener(self, error: Exception) -> None:
        log.warning("store.work_listener_lost", url=self._redacted, error=_first_line(str(error)))
        if self._work_listener is not None:
            self._work_listener.invalidate()
            self._work_listener = None

    # -- workers registry ------------------------------------------------------------------------

    def save_worker(self, worker: WorkerRecord) -> None:
        """Insert or replace the row of ``worker.id``."""
        with self._driver() as driver:
            driver.execute(
                Q["save_worker"],
                {
                    "id": worker.id,
                    "host": worker.host,
                    "pid": worker.pid,
                    "queues": codec.dumps(list(worker.queues)),
                    "concurrency": worker.concurrency,
                    "started_at": worker.started_at,
                    "now": worker.heartbeat_at,
                    "current": codec.dumps(list(worker.current)),
                },
            )

    def remove_worker(self, worker_id: str) -> None:
        """Delete the row of ``worker_id``."""
        with self._driver() as driver:
            driver.execute(Q["remove_worker"], {"id": worker_id})

    def prune_workers(self, before: datetime) -> None:
        """Delete rows whose heartbeat is older than ``before``."""
        with self._driver() as driver:
            driver.execute(Q["prune_workers"], {"before": before})

    def workers(self) -> list[WorkerRecord]:
        """Every row, oldest first."""
        with self._driver() as driver:
            rows = driver.execute(Q["list_workers"]).fetchall()
        return [
            WorkerRecord(i, h, p, tuple(_decode(q)), c, s, b, tuple(_decode(cur)))
            for i, h, p, q, c, s, b, cur in rows
        ]

    def close(self) -> None:
        """Close all connections, the listeners included."""
        with self._listen_lock:
            if self._listener is not None:
                self._listener.invalidate()
                self._listener = None
        with self._work_lock:
            if self._work_listener is not None:
                self._work_listener.invalidate()
                self._work_listener = None
        self._engine.dispose()


def _psycopg(connection: PoolProxiedConnection) -> psycopg.Connection[Any]:
    """The psycopg connection under a pooled one."""
    driver = connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    return driver


def _events_document(batch: AppendBatch) -> str:
    """The events of ``batch`` as one JSON array (data and metadata are already JSON: spliced in)."""
    events = ",".join(
        f'{{"id":"{event_id}","type":{_quote(event_type)},"data":{data},"metadata":{metadata}}}'
        for event_id, event_type, data, metadata in zip(
            batch.event_ids, batch.event_types, batch.event_data, batch.event_metadata, strict=True
        )
    )
    return f"[{events}]"


def _enqueue_document(batch: AppendBatch) -> str:
    """The work items of ``batch`` as one JSON array (payloads are already JSON: spliced in)."""
    items = ",".join(
        f'{{"id":{_quote(work.id)},"queue":{_quote(work.queue)},"stream_id":{_quote(work.stream_id)},'
        f'"kind":{_quote(work.kind)},"run_at":"{work.run_at.isoformat(timespec="microseconds")}",'
        f'"payload":{work.payload}}}'
        for work in batch.enqueue
    )
    return f"[{items}]"


_quote = json.JSONEncoder(ensure_ascii=False).encode


def _history(stream_id: str, document: str) -> tuple[RecordedEvent, ...]:
    """The events of a ``claim_work`` row (one JSON array, decoded in one call)."""
    return tuple(
        _restore(stream_id, v, p, uuid.UUID(i), t, d, m, datetime.fromisoformat(r))
        for v, p, i, t, d, m, r in _decode(document)
    )


def _position(payload: str) -> int:
    try:
        return int(payload)
    except ValueError:
        return 0


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else message
