"""Shared test configuration: the databases every store and worker test runs against.

One PostgreSQL fixture for the whole suite. ``postgres_url`` is a fresh, empty database on the server
at 127.0.0.1:5432 (``ORCHESTRATOR_TEST_PG`` names the admin connection), created for one test and
dropped after it; ``fresh_pg_database`` makes more of them for a test that needs several (by name).
``database_url`` is parametrized over SQLite (a fresh file) and PostgreSQL. Without the server the
PostgreSQL half is skipped locally, and fails loudly when ``CI=true``: CI must never silently skip it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

PG_ADMIN = os.environ.get("ORCHESTRATOR_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def pytest_report_header(config: pytest.Config) -> str:
    return f"CI={os.environ.get('CI', '')!r} postgres={PG_ADMIN}"


def pg_url(database: str) -> str:
    """The SQLAlchemy URL of ``database`` on the test server (whether it exists or not)."""
    info = psycopg.conninfo.conninfo_to_dict(PG_ADMIN)
    user = info.get("user", "postgres")
    password = f":{info['password']}" if info.get("password") else ""
    host, port = info.get("host", "127.0.0.1"), info.get("port", 5432)
    return f"postgresql+psycopg://{user}{password}@{host}:{port}/{database}"


@pytest.fixture
def pg_url_for() -> Callable[[str], str]:
    """:func:`pg_url`: the SQLAlchemy URL of a database on the test server, by name."""
    return pg_url


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection to the test server; skips when it is unreachable, fails when CI=true."""
    try:
        connection = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        message = f"PostgreSQL is not reachable at {PG_ADMIN}: {error}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} (CI=true: the PostgreSQL tests must run)", pytrace=False)
        pytest.skip(message)
    with connection:
        yield connection


@pytest.fixture
def fresh_pg_database(pg_admin: psycopg.Connection[Any]) -> Iterator[Callable[[], str]]:
    """A factory of fresh, empty databases (random names), all dropped at the end of the test."""
    created: list[str] = []

    def create() -> str:
        name = f"orch_test_{uuid.uuid4().hex[:12]}"
        pg_admin.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return name

    yield create
    for name in created:
        pg_admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url(fresh_pg_database: Callable[[], str]) -> str:
    """A fresh, empty PostgreSQL database for one test (SQLAlchemy URL), dropped after it."""
    return pg_url(fresh_pg_database())


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database file for one test."""
    return f"sqlite:///{tmp_path / 'orchestrator.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs once on SQLite and once on PostgreSQL."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(fixture))
