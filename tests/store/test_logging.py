"""Logging goes through structlog and never carries payloads."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
import structlog
from structlog.testing import capture_logs

from orchestrator.store import ConcurrencyError, EventStore, NewEvent, Snapshot, WorkItem

SECRET = "payload-secret-7f3a"


@pytest.fixture(autouse=True)
def default_logging() -> None:
    """Undo a level filter an in-process CLI run (``configure_logging``) left behind."""
    structlog.reset_defaults()


def test_payloads_never_reach_the_logs(
    open_store: Callable[..., EventStore], unique: Callable[[str], str]
) -> None:
    stream, queue = unique("exec"), unique("queue")
    with capture_logs() as logs:
        store = open_store()
        new = NewEvent(uuid.uuid4(), "T", {"s": SECRET}, {"m": SECRET})
        store.append(
            stream,
            0,
            [new],
            enqueue=[WorkItem(unique("w"), queue, stream, "task", {"s": SECRET})],
            snapshot=Snapshot(stream, 1, {"s": SECRET}),
        )
        store.append(stream, 0, [new])  # replayed
        with pytest.raises(ConcurrencyError):
            store.append(stream, 0, [NewEvent(uuid.uuid4(), "T", {"s": SECRET})])
        store.claim("w", [queue], 1, 30)
        store.read_stream(stream)
    assert logs, "the store logs something (through structlog)"
    assert SECRET not in repr(logs)
