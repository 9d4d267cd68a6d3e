"""Fixtures of the event store contract suite: every test taking ``store`` runs on SQLite and PostgreSQL.

The databases come from the suite's fixtures (``tests/conftest.py``): a fresh SQLite file, or a
fresh PostgreSQL database (skipped without the server, failing when ``CI=true``), one per test,
with the schema at head. Tests still name their streams and queues with ``unique``, so that what
they read is plainly theirs.
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import structlog

from orchestrator.store import EventStore, upgrade

from .helpers import FakeClock

# Store logs at INFO and above only: debug output of thousands of appends would slow tests down.
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    """The backend under test: ``sqlite`` or ``postgres``."""
    return str(request.param)


@pytest.fixture
def store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A fresh database with the schema at head: a new SQLite file, or a new PostgreSQL database."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'events.db'}"
    else:
        url = str(request.getfixturevalue("postgres_url"))
    upgrade(url)
    return url


@pytest.fixture
def open_store(store_url: str) -> Iterator[Callable[..., EventStore]]:
    """Opens stores on ``store_url`` (keyword arguments go to ``from_url``); closes them after the test."""
    opened: list[EventStore] = []

    def open_(**options: Any) -> EventStore:
        store = EventStore.from_url(store_url, auto_upgrade=True, **options)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: Callable[..., EventStore]) -> EventStore:
    """An event store on the backend under test."""
    return open_store()


@pytest.fixture
def clock() -> FakeClock:
    """A hand-moved clock, for stores opened with ``open_store(clock=clock)``."""
    return FakeClock()


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Fresh names (streams, queues, work ids) so tests sharing a database never meet."""
    return lambda prefix: f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def raw_sql(backend: str, store_url: str) -> Callable[[str], None]:
    """Runs one SQL statement on the store's database outside the store (for append-only checks)."""

    def run(statement: str) -> None:
        if backend == "sqlite":
            database = sqlite3.connect(store_url.removeprefix("sqlite:///"), isolation_level=None)
            try:
                database.execute(statement)
            finally:
                database.close()
        else:
            conninfo = store_url.replace("postgresql+psycopg://", "postgresql://")
            with psycopg.connect(conninfo, autocommit=True) as server:
                server.execute(statement.encode())

    return run
