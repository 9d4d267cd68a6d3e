"""Bad URLs and unreachable databases: a clear StoreUnavailable naming the URL, never its password."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from orchestrator.store import EventStore, SchemaOutOfDate, StoreUnavailable, migrate, upgrade

from .helpers import event


@pytest.mark.parametrize(
    ("url", "shown", "reason"),
    [
        ("not a url", "not a url", "not a database URL"),
        ("", "''", "not a database URL"),
        (
            "mysql://app:s3cret@db.example/prod",
            "mysql://app:***@db.example/prod",
            "unsupported database 'mysql'",
        ),
        (
            "postgresql://app:s3cret@127.0.0.1:5432",
            "postgresql://app:***@127.0.0.1:5432",
            "names no database",
        ),
        (
            "postgresql+psycopg://app:s3cret@127.0.0.1:1/orchestrator",
            "postgresql+psycopg://app:***@127.0.0.1:1/orchestrator",
            "Connection refused",
        ),
    ],
)
def test_bad_urls_and_unreachable_servers_are_store_unavailable(url: str, shown: str, reason: str) -> None:
    with pytest.raises(StoreUnavailable) as raised:
        EventStore.from_url(url)
    message = str(raised.value)
    assert shown in message
    assert reason in message
    assert "s3cret" not in message
    assert "s3cret" not in raised.value.url


def test_a_sqlite_file_in_a_missing_directory_is_unavailable_and_nothing_is_created(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir"
    with pytest.raises(StoreUnavailable, match="does its directory exist"):
        EventStore.from_url(f"sqlite:///{missing / 'events.db'}")
    assert not (tmp_path / "no").exists()


@pytest.mark.postgres
def test_a_missing_postgres_database_is_unavailable(pg_url_for: Callable[[str], str]) -> None:
    url = pg_url_for("orchestrator_test_does_not_exist").replace("postgres@", "postgres:pw@")
    with pytest.raises(StoreUnavailable, match="does not exist") as raised:
        EventStore.from_url(url)
    assert ":pw@" not in str(raised.value)


@pytest.mark.postgres
def test_postgres_without_schema_is_out_of_date_and_left_untouched(
    pg_admin: psycopg.Connection[Any],
    fresh_pg_database: Callable[[], str],
    pg_url_for: Callable[[str], str],
) -> None:
    database = fresh_pg_database()
    with pytest.raises(SchemaOutOfDate, match="orchestrator db upgrade") as raised:
        EventStore.from_url(pg_url_for(database))
    assert (raised.value.current, raised.value.head) == (None, migrate.HEAD)
    with psycopg.connect(pg_admin.info.dsn.replace("dbname=test", f"dbname={database}")) as connection:
        tables = connection.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
    assert tables == (0,)


def test_in_memory_sqlite_stores_are_private(unique: Callable[[str], str]) -> None:
    stream = unique("exec")
    with EventStore.from_url("sqlite://") as first, EventStore.from_url("sqlite:///:memory:") as second:
        recorded = first.append(stream, 0, [event()])
        assert first.read_stream(stream) == recorded
        assert second.read_stream(stream) == []


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_server_that_drops_connections_mid_use_is_unavailable_then_recovers(
    store: EventStore, store_url: str, pg_admin: psycopg.Connection[Any], unique: Callable[[str], str]
) -> None:
    stream = unique("exec")
    store.append(stream, 0, [event()])
    database = store_url.rsplit("/", 1)[1]
    pg_admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = %s AND pid <> pg_backend_pid()",
        (database,),
    )

    with pytest.raises(StoreUnavailable, match="unavailable"):
        store.append(stream, 1, [event()])
    # Nothing half-written, and the next call reconnects.
    assert store.stream_version(stream) == 1
    assert [e.version for e in store.append(stream, 1, [event()])] == [2]


@pytest.mark.postgres
def test_a_database_defaulting_to_serializable_still_appends(
    pg_admin: psycopg.Connection[Any],
    fresh_pg_database: Callable[[], str],
    pg_url_for: Callable[[str], str],
    unique: Callable[[str], str],
) -> None:
    """The append function needs a fresh snapshot per statement: the store asks for READ COMMITTED."""
    database = fresh_pg_database()
    pg_admin.execute(f"ALTER DATABASE \"{database}\" SET default_transaction_isolation TO 'serializable'")
    url = pg_url_for(database)
    upgrade(url)
    stream = unique("exec")
    with EventStore.from_url(url) as store:
        assert [e.version for e in store.append(stream, 0, [event(), event()])] == [1, 2]
