"""Execution summaries: the one projection the store keeps, so listing executions is one indexed read.

Listing executions used to fold the whole global log, from position 0, at every call. Instead, the
store keeps one row per execution in ``execution_summaries`` (migration 0003, which also backfills
the executions stored before it), written in the transaction of the append that stores the events,
so it is exactly as current as the streams:

- for streams whose id starts with :data:`STREAM_PREFIX` (``execution:``) only;
- :data:`START_EVENT` at version 1 inserts the row, status RUNNING, with the facts of its metadata
  (``state_machine``, ``version``, ``name``, ``started_by``) and its time (``data.ts``: seconds
  since the epoch, the execution's clock; the recorded time when there is none);
- the events of :data:`STATUS_EVENTS` set the status, and the stop time (none for
  :data:`REDRIVE_EVENT`), unless a later event of the stream set them already.

Who writes it: on PostgreSQL, a row trigger on ``events`` whose ``WHEN`` clause selects those
events, so the other events cost one comparison and no function call, and every version of the
append function (``_v1``, ``_v2``: workers of the previous release during a rolling upgrade) keeps
it current. On SQLite, the backend, the one writer, in its append transaction (a SQLite row
trigger costs every inserted row a sub-program call: 10% of a 100-event append).

Why not the alternatives: a catch-up projection (a table plus the last position folded into it)
would be generic, but every read would first fold what was appended since the previous one
(writing, on SQLite, under the one write lock), and need its own concurrency control; an update
inside a new PostgreSQL append function would leave stale the executions that workers of the
previous release append to; a summary sent by the engine with its appends would need every writer
to send it.

The price is that the store knows these few names of the engine's vocabulary (the prefix, six
event types, four metadata keys): they are all here and in migration 0003 (and the SQLite
backend's ``summarise_*`` statements), nowhere else in the store. Reads are generic: SQLAlchemy
Core with optional filters, the same code on both databases. The projection never rejects an
append: a value of the wrong JSON type is stored as NULL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Double, Integer, MetaData, Select, Table, Text, func, select
from sqlalchemy.engine import Connection

#: The streams summarised: ``execution:<execution id>``.
STREAM_PREFIX = "execution:"

#: The event that creates the summary (as RUNNING), when it is version 1 of its stream.
START_EVENT = "ExecutionStarted"

#: The event that makes an ended execution run again (status RUNNING, no stop time).
REDRIVE_EVENT = "ExecutionRedriven"

#: The status each event type sets; all but ``ExecutionRedriven`` also set the stop time.
STATUS_EVENTS = {
    "ExecutionSucceeded": "SUCCEEDED",
    "ExecutionFailed": "FAILED",
    "ExecutionAborted": "ABORTED",
    "ExecutionTimedOut": "TIMED_OUT",
    "ExecutionRedriven": "RUNNING",
}

_table = Table(
    "execution_summaries",
    MetaData(),
    Column("stream_id", Text, primary_key=True),
    Column("state_machine", Text),
    Column("version", Integer),
    Column("name", Text),
    Column("started_by", Text),
    Column("status", Text, nullable=False),
    Column("started_at", Double, nullable=False),
    Column("stopped_at", Double),
    Column("status_version", Integer, nullable=False),
    Column("position", BigInteger, nullable=False),
)


@dataclass(frozen=True)
class ExecutionSummary:
    """One execution as the store summarises it (see the module docstring).

    ``stream_id`` is ``execution:<execution id>``; ``position`` that of its ``ExecutionStarted``.
    ``state_machine``, ``version``, ``name`` and ``started_by`` are None when that event's
    metadata did not hold them (as a string, or an integer for ``version``).
    """

    stream_id: str
    state_machine: str | None
    version: int | None
    name: str | None
    started_by: str | None
    status: str
    started_at: datetime
    stopped_at: datetime | None
    position: int

    @property
    def execution(self) -> str:
        """The execution's id: the stream id without its prefix."""
        return self.stream_id.removeprefix(STREAM_PREFIX)


@dataclass(frozen=True)
class SummaryFilter:
    """Which summaries: all conditions given must hold. Times are timezone-aware."""

    state_machine: str | None = None
    status: str | None = None
    started_after: datetime | None = None
    started_before: datetime | None = None

    def __post_init__(self) -> None:
        for name in ("started_after", "started_before"):
            moment = getattr(self, name)
            if moment is not None and (not isinstance(moment, datetime) or moment.utcoffset() is None):
                raise ValueError(f"{name} must be a timezone-aware datetime, not {moment!r}")


def _where(query: Select[Any], wanted: SummaryFilter) -> Select[Any]:
    t = _table.c
    if wanted.state_machine is not None:
        query = query.where(t.state_machine == wanted.state_machine)
    if wanted.status is not None:
        query = query.where(t.status == wanted.status)
    if wanted.started_after is not None:
        query = query.where(t.started_at > wanted.started_after.timestamp())
    if wanted.started_before is not None:
        query = query.where(t.started_at < wanted.started_before.timestamp())
    return query


def read(
    connection: Connection, wanted: SummaryFilter, limit: int | None, offset: int
) -> list[ExecutionSummary]:
    """The summaries ``wanted``, newest first (by start time, then position), ``offset`` to ``limit``."""
    t = _table.c
    query = _where(
        select(
            t.stream_id,
            t.state_machine,
            t.version,
            t.name,
            t.started_by,
            t.status,
            t.started_at,
            t.stopped_at,
            t.position,
        ),
        wanted,
    ).order_by(t.started_at.desc(), t.position.desc())
    if limit is not None:
        query = query.limit(limit)
    if offset:
        query = query.offset(offset)
    return [
        ExecutionSummary(
            stream_id,
            state_machine,
            version,
            name,
            started_by,
            status,
            datetime.fromtimestamp(started_at, UTC),
            None if stopped_at is None else datetime.fromtimestamp(stopped_at, UTC),
            position,
        )
        for (
            stream_id,
            state_machine,
            version,
            name,
            started_by,
            status,
            started_at,
            stopped_at,
            position,
        ) in connection.execute(query)
    ]


def count(connection: Connection, wanted: SummaryFilter) -> int:
    """How many summaries are ``wanted``."""
    return int(connection.execute(_where(select(func.count()).select_from(_table), wanted)).scalar_one())
