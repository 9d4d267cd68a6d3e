"""Fixtures of the event store contract suite: every test taking ``store`` runs on SQLite and PostgreSQL.

PostgreSQL: each test session creates a fresh database with a random name (migrated once) and drops
it at the end. When the server cannot be reached, the PostgreSQL tests are skipped, except when
``CI=true``: then they fail, loudly. The admin connection comes from ``ORCHESTRATOR_TEST_PG``
(default ``postgresql://postgres@127.0.0.1:5432/test``).

Tests of one session share the PostgreSQL database, so they use fresh stream ids and queue names
(``unique``) and read the global log from the position where they started.
"""

from __future__ import annotations

import logging
import os
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

PG_ADMIN_URL = os.environ.get("ORCHESTRATOR_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")

# Store logs at INFO and above only: debug output of thousands of appends would slow tests down.
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))


def pg_url_for(database: str) -> str:
    """A SQLAlchemy URL for ``database`` on the test server."""
    info = psycopg.conninfo.conninfo_to_dict(PG_ADMIN_URL)
    user = info.get("user", "postgres")
    password = f":{info['password']}" if info.get("password") else ""
    host, port = info.get("host", "127.0.0.1"), info.get("port", 5432)
    return f"postgresql+psycopg://{user}{password}@{host}:{port}/{database}"


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection to the test server; skips (fails in CI) when it is unreachable."""
    try:
        connection = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        message = f"PostgreSQL is unreachable at {PG_ADMIN_URL}: {error}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} (CI=true: PostgreSQL tests must run)", pytrace=False)
        pytest.skip(message)
    with connection:
        yield connection


@pytest.fixture(scope="session")
def fresh_pg_database(pg_admin: psycopg.Connection[Any]) -> Iterator[Callable[[], str]]:
    """A factory of empty databases (random names), all dropped at the end of the session."""
    created: list[str] = []

    def create() -> str:
        name = f"orchestrator_test_{uuid.uuid4().hex[:12]}"
        pg_admin.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return name

    yield create
    for name in created:
        pg_admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_url(fresh_pg_database: Callable[[], str]) -> str:
    """The URL of this session's PostgreSQL database, schema at head."""
    url = pg_url_for(fresh_pg_database())
    upgrade(url)
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    """The backend under test: ``sqlite`` or ``postgres``."""
    return str(request.param)


@pytest.fixture
def store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A database with the schema at head: a new SQLite file, or this session's PostgreSQL database."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'events.db'}"
    return str(request.getfixturevalue("pg_url"))


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
