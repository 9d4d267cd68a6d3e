"""PostgreSQL: an append is durable before it is acknowledged, in one round trip when uncontended.

``orchestrator_append_v3`` commits synchronously when the append lock is free and asynchronously
(returning the first position negated) when it had to wait; the backend then runs ``flush``, which
must really wait for the WAL to reach the disk: a synchronous commit that writes no WAL record of
its own does not (PostgreSQL then commits it asynchronously).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest

from orchestrator.store import EventStore
from orchestrator.store.backends.postgresql import Q

from .helpers import event

pytestmark = [pytest.mark.postgres, pytest.mark.parametrize("backend", ["postgres"], indirect=True)]

APPEND_LOCK = "SELECT pg_advisory_xact_lock(1330791240, 1)"
V3 = "SELECT orchestrator_append_v3(%s, %s, now(), %s::json, NULL, '{}'::text[], '[]'::json, NULL, NULL)"


@pytest.fixture
def server(store_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A plain connection to the store's database (autocommit)."""
    with psycopg.connect(store_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as c:
        yield c


@pytest.fixture
def holder(store_url: str) -> Iterator[Callable[[float], threading.Thread]]:
    """Holds the append lock in a transaction of its own for ``seconds``, from a thread."""
    conninfo = store_url.replace("postgresql+psycopg://", "postgresql://")
    threads: list[threading.Thread] = []

    def hold(seconds: float) -> threading.Thread:
        taken = threading.Event()

        def run() -> None:
            with psycopg.connect(conninfo, autocommit=True) as connection, connection.transaction():
                connection.execute(APPEND_LOCK)
                taken.set()
                time.sleep(seconds)

        thread = threading.Thread(target=run)
        thread.start()
        threads.append(thread)
        assert taken.wait(10), "the lock holder did not start"
        return thread

    yield hold
    for thread in threads:
        thread.join()


def test_flush_waits_for_the_wal_of_earlier_asynchronous_commits(
    server: psycopg.Connection[tuple[object, ...]],
) -> None:
    server.execute("CREATE TABLE scratch (n integer)")
    server.execute("SET synchronous_commit = off")
    behind = 0
    for n in range(5):
        server.execute("INSERT INTO scratch VALUES (%s)", (n,))  # committed, maybe not yet on disk
        row = server.execute("SELECT pg_current_wal_insert_lsn() > pg_current_wal_flush_lsn()").fetchone()
        behind += bool(row and row[0])
        server.execute("SET synchronous_commit = on")
        written = server.execute("SELECT pg_current_wal_insert_lsn()").fetchone()
        server.execute(Q["flush"])
        flushed = server.execute("SELECT pg_current_wal_flush_lsn() >= %s", written).fetchone()
        assert flushed == (True,), f"flush left WAL unflushed after insert {n}"
        server.execute("SET synchronous_commit = off")
    assert behind > 0, "the asynchronous commits were never behind the disk: the check proves nothing"


def test_v3_commits_synchronously_when_the_lock_is_free_and_says_so_when_it_waited(
    server: psycopg.Connection[tuple[object, ...]],
    holder: Callable[[float], threading.Thread],
    unique: Callable[[str], str],
) -> None:
    stream = unique("exec")
    document = '[{"id": "%s", "type": "T", "data": {}, "metadata": {}}]'

    free = server.execute(V3, (stream, 0, document % uuid.uuid4())).fetchone()
    assert free is not None and free[0] > 0

    thread = holder(0.3)
    waited = server.execute(V3, (stream, 1, document % uuid.uuid4())).fetchone()
    thread.join()
    assert waited == (-(free[0] + 1),)

    nothing = server.execute(V3, (stream, 2, "[]")).fetchone()
    assert nothing == (0,)


def test_an_append_that_waited_for_the_lock_is_recorded_in_order(
    store: EventStore, holder: Callable[[float], threading.Thread], unique: Callable[[str], str]
) -> None:
    stream = unique("exec")
    first = store.append(stream, 0, [event()])
    thread = holder(0.3)
    second = store.append(stream, 1, [event(), event()])
    thread.join()

    assert [(e.version, e.position) for e in second] == [
        (2, first[0].position + 1),
        (3, first[0].position + 2),
    ]
    assert store.read_stream(stream) == first + second
