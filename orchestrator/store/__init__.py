"""The append-only event store, with a durable work queue and timers beside the events.

SQLite (the embedded default, one writer) and PostgreSQL (many workers), on SQLAlchemy::

    store = EventStore.from_url("sqlite:///orchestrator.db")
    recorded = store.append("execution-1", 0, [NewEvent(uuid4(), "ExecutionStarted", {"input": {}})])
    store.read_stream("execution-1")

Layout: :mod:`.model` (the values), :mod:`.errors`, :mod:`.store` (:class:`EventStore`, the one
entry point), :mod:`.backends` (one module and one ``.sql`` file of named statements per database),
:mod:`.codec` (JSON and the payload limit), :mod:`.urls`, :mod:`.migrate` (Alembic, the schema),
:mod:`.summaries` (the execution summaries the database maintains with every append).
"""

from __future__ import annotations

from orchestrator.store.backends import ConnectionOptions
from orchestrator.store.codec import DEFAULT_PAYLOAD_LIMIT
from orchestrator.store.errors import (
    ConcurrencyError,
    DuplicateEventId,
    InvalidAppend,
    LeaseLost,
    PayloadTooLarge,
    SchemaOutOfDate,
    StoreBusy,
    StoreError,
    StoreUnavailable,
    StreamMoved,
)
from orchestrator.store.migrate import upgrade
from orchestrator.store.model import (
    ClaimedWork,
    NewEvent,
    QueueDepth,
    RecordedEvent,
    Snapshot,
    WorkerRecord,
    WorkItem,
)
from orchestrator.store.store import EventStore
from orchestrator.store.summaries import ExecutionSummary

__all__ = [
    "DEFAULT_PAYLOAD_LIMIT",
    "ClaimedWork",
    "ConcurrencyError",
    "ConnectionOptions",
    "DuplicateEventId",
    "EventStore",
    "ExecutionSummary",
    "InvalidAppend",
    "LeaseLost",
    "NewEvent",
    "PayloadTooLarge",
    "QueueDepth",
    "RecordedEvent",
    "SchemaOutOfDate",
    "Snapshot",
    "StoreBusy",
    "StoreError",
    "StoreUnavailable",
    "StreamMoved",
    "WorkItem",
    "WorkerRecord",
    "upgrade",
]
