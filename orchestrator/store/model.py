"""The values the event store takes and gives: events, snapshots and work items.

All are frozen dataclasses holding JSON-ready ``dict`` payloads. The store never copies those
dictionaries: treat them as read-only once handed over (the engine's fold and decide are pure, so
they never mutate what they read).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from orchestrator.store.codec import decode as _decode


@dataclass(frozen=True)
class NewEvent:
    """An event to append. ``id`` is chosen by the caller and makes the append idempotent.

    ``metadata`` holds lineage, never domain data: ``causation_id`` (the event or command that caused
    this one), ``correlation_id`` (the execution or request it belongs to), ``actor``, ...
    """

    id: uuid.UUID
    type: str
    data: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordedEvent:
    """An event as stored: its place in its stream (``version``, from 1) and in the store (``position``).

    Positions are dense and increase in commit order, so a reader that has seen position ``p`` has
    seen every event with a smaller position.
    """

    stream_id: str
    version: int
    position: int
    id: uuid.UUID
    type: str
    data: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: datetime

    @classmethod
    def _restore(  # noqa: PLR0917 - positional: called once per event read
        cls,
        stream_id: str,
        version: int,
        position: int,
        id: uuid.UUID,
        type: str,
        data: dict[str, Any],
        metadata: dict[str, Any],
        recorded_at: datetime,
    ) -> RecordedEvent:
        """Build a recorded event from trusted storage without the dataclass ``__init__``.

        Replaying long streams is dominated by per-object overhead; filling ``__dict__`` directly is
        half the cost of the generated frozen ``__init__`` (the ``eventsourcing`` library's mapper
        restores its domain events the same way). Equality, ``repr`` and immutability are unchanged.
        """
        event = object.__new__(cls)
        object.__setattr__(
            event,
            "__dict__",
            {
                "stream_id": stream_id,
                "version": version,
                "position": position,
                "id": id,
                "type": type,
                "data": data,
                "metadata": metadata,
                "recorded_at": recorded_at,
            },
        )
        return event

    @classmethod
    def _restore_raw(  # noqa: PLR0917 - positional: called once per event read
        cls,
        stream_id: str,
        version: int,
        position: int,
        raw_id: bytes | str,
        type: str,
        data: dict[str, Any],
        raw_metadata: str,
        recorded_at: datetime,
    ) -> RecordedEvent:
        """:meth:`_restore`, with the id as stored (16 bytes, or its text) and the metadata as stored
        (JSON text): each parsed when first read.

        Replaying a stream into state reads the data of every event, but rarely an id (building a
        :class:`uuid.UUID` costs as much as decoding a small payload) or the metadata (lineage,
        which the engine reads from the first event only): a third of the time of a replay.
        """
        event = object.__new__(cls)
        object.__setattr__(
            event,
            "__dict__",
            {
                "stream_id": stream_id,
                "version": version,
                "position": position,
                "_raw_id": raw_id,
                "type": type,
                "data": data,
                "_raw_metadata": raw_metadata,
                "recorded_at": recorded_at,
            },
        )
        return event

    @classmethod
    def _restore_rows(
        cls, stream_id: str, rows: Iterable[tuple[int, int, bytes | str, str, str, str, datetime]]
    ) -> list[RecordedEvent]:
        """:meth:`_restore_raw` of each row ``(version, position, raw id, type, data as JSON text,
        metadata as JSON text, recorded_at)`` of one stream, decoding the data.

        One loop with the calls hoisted out of it: a tenth of a replay's time less than calling
        :meth:`_restore_raw` per row. ``rows`` may be a stream of rows still arriving: each is
        restored as it comes, while the database sends the next ones.
        """
        events: list[RecordedEvent] = []
        append = events.append
        new = object.__new__
        decode = _decode
        for version, position, raw_id, type_, data, raw_metadata, recorded_at in rows:
            event = new(cls)
            event.__dict__.update(
                stream_id=stream_id,
                version=version,
                position=position,
                _raw_id=raw_id,
                type=type_,
                data=decode(data),
                _raw_metadata=raw_metadata,
                recorded_at=recorded_at,
            )
            append(event)
        return events

    if not TYPE_CHECKING:  # for mypy, every attribute is a declared field

        def __getattr__(self, name: str) -> Any:
            """The ``id`` or ``metadata`` of an event restored by :meth:`_restore_raw`, parsed once,
            when first read."""
            fields = self.__dict__
            if name == "id" and "_raw_id" in fields:
                raw = fields["_raw_id"]
                parsed: Any = uuid.UUID(bytes=raw) if isinstance(raw, bytes) else uuid.UUID(raw)
            elif name == "metadata" and "_raw_metadata" in fields:
                parsed = _decode(fields["_raw_metadata"])
            else:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
            fields[name] = parsed
            return parsed


@dataclass(frozen=True)
class Snapshot:
    """The folded ``state`` of a stream as of ``version``; bounds the replay of long streams."""

    stream_id: str
    version: int
    state: dict[str, Any]


@dataclass(frozen=True)
class WorkItem:
    """Work to do (``run_at`` None: now) or a durable timer (``run_at`` in the future).

    ``id`` is deterministic, chosen by the caller (e.g. ``"<execution>/<event version>/task"``):
    enqueueing an id that exists, even one already completed, is ignored.
    """

    id: str
    queue: str
    stream_id: str
    kind: str
    payload: dict[str, Any]
    run_at: datetime | None = None


@dataclass(frozen=True)
class ClaimedWork:
    """A work item leased to one worker until ``lease_expires_at``; ``attempts`` counts its claims."""

    id: str
    queue: str
    stream_id: str
    kind: str
    payload: dict[str, Any]
    run_at: datetime
    attempts: int
    lease_expires_at: datetime
    history: tuple[RecordedEvent, ...] | None = field(default=None, repr=False, compare=False)
    """The events of ``stream_id`` as of the claim, read in its transaction, when the claim asked for
    them (``history_limit``) and the stream was no longer than that; None otherwise."""


@dataclass(frozen=True)
class QueueDepth:
    """How many uncompleted work items one queue holds, by what they wait for."""

    queue: str
    ready: int
    """Due and claimable now (never leased, or their lease expired)."""
    scheduled: int
    """Due later: timers, retry back-offs."""
    leased: int
    """Held by a worker under an unexpired lease."""


@dataclass(frozen=True)
class WorkerRecord:
    """A worker process as it last reported itself in the workers registry.

    ``current`` lists the items it had in flight, each a JSON object (``work``, ``kind``,
    ``execution``, ``state``, ``since``) as the worker wrote it.
    """

    id: str
    host: str
    pid: int
    queues: tuple[str, ...]
    concurrency: int
    started_at: datetime
    heartbeat_at: datetime
    current: tuple[dict[str, Any], ...]
