"""Small helpers shared by the store tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from orchestrator.store import NewEvent


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def event(type_: str = "TaskScheduled", **data: Any) -> NewEvent:
    """A new event with a random id and some lineage metadata."""
    return NewEvent(uuid.uuid4(), type_, data or {"n": 1}, {"correlation_id": "exec-1", "actor": "test"})
