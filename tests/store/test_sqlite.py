"""SQLite only: WAL, the busy timeout, and a clear StoreBusy when another process holds the write lock."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.store import ConnectionOptions, EventStore, StoreBusy, WorkItem, migrate

from .helpers import event
from .processes import spawn


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "orchestrator.db"


def test_the_embedded_default_creates_its_schema_on_first_use(path: Path) -> None:
    with EventStore.from_url(f"sqlite:///{path}") as store:
        store.append("exec", 0, [event()])
    connection = sqlite3.connect(path)
    try:
        (mode,) = connection.execute("PRAGMA journal_mode").fetchone()
        (revision,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    finally:
        connection.close()
    assert mode == "wal"
    assert revision == migrate.HEAD


def test_a_second_process_holding_the_write_lock_makes_writes_busy_not_locked(
    path: Path, unique: Callable[[str], str]
) -> None:
    store = EventStore.from_url(f"sqlite:///{path}", options=ConnectionOptions(busy_timeout=0.5))
    stream = unique("exec")
    store.append(stream, 0, [event()])
    holder = spawn("hold-sqlite-lock", str(path), "30")
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"

        # Reads go on (WAL) ...
        assert store.stream_version(stream) == 1
        # ... writes wait for the busy timeout, then say what is going on.
        began = time.monotonic()
        with pytest.raises(StoreBusy) as raised:
            store.append(stream, 1, [event()])
        waited = time.monotonic() - began
        with pytest.raises(StoreBusy):
            store.claim("worker", ["queue"], 1, 30)
    finally:
        holder.kill()
        holder.communicate(timeout=30)

    assert 0.4 <= waited < 5
    message = str(raised.value)
    assert "database is locked" not in message
    assert "another process" in message
    assert "0.5 s" in message
    assert str(path) in message
    # Once the other process is gone, writing works again and nothing was half-written.
    assert store.stream_version(stream) == 1
    store.append(stream, 1, [event()], enqueue=[WorkItem(unique("w"), "queue", stream, "task", {})])
    assert store.stream_version(stream) == 2
    store.close()


@pytest.mark.parametrize(
    ("options", "synchronous", "busy_ms"),
    [(ConnectionOptions(), 1, 5000), (ConnectionOptions(sqlite_synchronous="full", busy_timeout=2), 2, 2000)],
)
def test_connections_get_the_durability_and_busy_timeout_asked_for(
    path: Path, options: ConnectionOptions, synchronous: int, busy_ms: int
) -> None:
    with EventStore.from_url(f"sqlite:///{path}", options=options) as store:
        store.append("exec", 0, [event()])
        with store._backend.connect() as connection:  # the pragmas are per connection: look at one
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == synchronous
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == busy_ms
