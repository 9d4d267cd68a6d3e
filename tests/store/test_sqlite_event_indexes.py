"""SQLite only: migration 0004 (events indexed by stream_key, the position of a stream's first event).

An existing database upgrades with its events intact and keeps working (appends continue, ids stay
the idempotency key, events stay append-only); downgrading gives the 0003 table back; the store's
queries are index searches, never scans of events; the database rejects an event whose stream_key
is not the position of a stream's first event.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.store import DuplicateEventId, EventStore, NewEvent, migrate
from orchestrator.store.backends.sqlite import Q

from .helpers import event

# Rows as the 0003 schema stores them: (position, stream_id, version, id, type, data, metadata, time).
Row = tuple[int, str, int, bytes, str, str, str, str]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "orchestrator.db"


@pytest.fixture
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(path, isolation_level=None)
    yield connection
    connection.close()


def old_rows() -> list[Row]:
    """Three streams written interleaved, as revision 0003's backend wrote them."""
    rows: list[Row] = []
    versions: dict[str, int] = {}
    for position, stream in enumerate(["execution:m:a", "b", "execution:m:a", "c", "b", "b", "c"], start=1):
        versions[stream] = versions.get(stream, 0) + 1
        rows.append(
            (
                position,
                stream,
                versions[stream],
                uuid.uuid4().bytes,
                "ExecutionStarted" if versions[stream] == 1 and stream.startswith("execution:") else "T",
                f'{{"n":{position},"ts":1700000000.5}}',
                '{"actor":"test"}',
                f"2030-01-01T12:00:0{position}.000000+00:00",
            )
        )
    return rows


def keys_are_first_positions(connection: sqlite3.Connection) -> bool:
    """Whether every event's stream_key is the position of its stream's version 1."""
    (wrong,) = connection.execute(
        "SELECT count(*) FROM events AS e "
        "WHERE e.stream_key IS NOT (SELECT s.position FROM events AS s "
        "WHERE s.stream_id = e.stream_id AND s.version = 1)"
    ).fetchone()
    return bool(wrong == 0)


def test_upgrade_from_0003_keeps_every_event_and_the_store_goes_on(
    path: Path, raw: sqlite3.Connection
) -> None:
    url = f"sqlite:///{path}"
    assert migrate.upgrade(url, "0003") == "0003"
    rows = old_rows()
    raw.executemany(
        "INSERT INTO events (position, stream_id, version, id, type, data, metadata, recorded_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )

    assert migrate.upgrade(url) == migrate.HEAD

    columns = "position, stream_id, version, id, type, data, metadata, recorded_at"
    assert raw.execute(f"SELECT {columns} FROM events ORDER BY position").fetchall() == rows
    assert keys_are_first_positions(raw)
    with EventStore.from_url(url) as store:
        everything = store.read_all()
        assert [(e.position, e.stream_id, e.version, e.id.bytes) for e in everything] == [
            (p, s, v, i) for p, s, v, i, *_ in rows
        ]
        assert [e.position for e in store.read_stream("b")] == [2, 5, 6]
        assert [e.version for e in store.read_stream("b", from_version=2)] == [2, 3]
        assert store.stream_version("c") == 2
        assert store.stream_version("execution:m:a") == 2

        # Appends continue each stream and the global order ...
        added = store.append("b", 3, [event(), event()])
        assert [(e.version, e.position) for e in added] == [(4, 8), (5, 9)]
        fresh = store.append("d", 0, [event(), event()])
        assert [(e.version, e.position) for e in fresh] == [(1, 10), (2, 11)]
        # ... and ids stored before the upgrade are still the idempotency key.
        first_b = store.read_stream("b", limit=1)[0]
        again = NewEvent(first_b.id, first_b.type, first_b.data, first_b.metadata)
        assert store.append("b", 0, [again]) == [first_b]
        with pytest.raises(DuplicateEventId):
            store.append("b", 5, [event(), NewEvent(first_b.id, "Other", {}, {})])
        assert store.stream_version("b") == 5
    assert keys_are_first_positions(raw)

    # Still append-only.
    for statement in ("UPDATE events SET type = 'Rewritten'", "DELETE FROM events WHERE stream_id = 'b'"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            raw.execute(statement)


def test_downgrade_to_0003_gives_its_table_back_with_the_events(path: Path, raw: sqlite3.Connection) -> None:
    url = f"sqlite:///{path}"
    with EventStore.from_url(url) as store:
        recorded = store.append("a", 0, [event(), event()]) + store.append("b", 0, [event()])

    assert migrate.downgrade(url, "0003") == "0003"
    columns = [row[1] for row in raw.execute("PRAGMA table_info(events)")]
    assert "stream_key" not in columns
    assert raw.execute(
        "SELECT position, stream_id, version, id FROM events ORDER BY position"
    ).fetchall() == [(e.position, e.stream_id, e.version, e.id.bytes) for e in recorded]
    # The 0001 constraints are back: (stream_id, id) unique, and no updates.
    with pytest.raises(sqlite3.IntegrityError, match=r"events\.stream_id, events\.id"):
        raw.execute(
            "INSERT INTO events VALUES (4, 'a', 3, ?, 'T', '{}', '{}', '2030-01-01T12:00:00.000000+00:00')",
            (recorded[0].id.bytes,),
        )
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        raw.execute("UPDATE events SET type = 'x'")

    assert migrate.upgrade(url) == migrate.HEAD
    with EventStore.from_url(url) as store:
        assert store.read_all() == recorded
    assert keys_are_first_positions(raw)


@pytest.mark.parametrize(
    ("statement", "index"),
    [
        ("append_head", "events_stream_version"),
        ("append_head", "events_stream_start"),
        ("read_stream", "events_stream_version"),
        ("read_all", "INTEGER PRIMARY KEY"),
        ("event_by_id", "events_stream_event_id"),
        ("stream_version", "events_stream_version"),
        ("last_position", "SEARCH events"),
    ],
)
def test_event_queries_search_indexes_and_never_scan_events(
    path: Path, raw: sqlite3.Connection, statement: str, index: str
) -> None:
    with EventStore.from_url(f"sqlite:///{path}") as store:
        for stream in ("a", "b", "c"):
            store.append(stream, 0, [event() for _ in range(20)])
    raw.execute("ANALYZE")  # with statistics, a planner that preferred a scan would show it

    parameters: dict[str, object] | tuple[object, ...] = {
        "stream_id": "b",
        "from_version": 5,
        "limit": 10,
        "after_position": 30,
        "id": uuid.uuid4().bytes,
    }
    plan = [row[3] for row in raw.execute(f"EXPLAIN QUERY PLAN {Q[statement]}", parameters)]

    assert any(index in step for step in plan), plan
    assert not [step for step in plan if step.startswith("SCAN events")], plan
    # The stream's key comes from the covering partial index: no read of the table for it.
    for step in plan:
        if "events_stream_start" in step:
            assert "COVERING INDEX" in step, plan


@pytest.mark.parametrize(
    ("row", "why"),
    [
        ((2, "a", 2, "2030-01-01", 2), "a later event keyed as a first one"),
        ((2, "b", 1, "2030-01-01", 1), "a first event keyed as another stream's"),
        ((2, "a", 2, "2030-01-01", 3), "a key from the future"),
    ],
)
def test_the_database_rejects_a_stream_key_that_is_not_a_first_position(
    path: Path, raw: sqlite3.Connection, row: tuple[int, str, int, str, int], why: str
) -> None:
    with EventStore.from_url(f"sqlite:///{path}") as store:
        store.append("a", 0, [event()])
    position, stream, version, recorded_at, key = row
    with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"):
        raw.execute(
            "INSERT INTO events (position, stream_id, version, id, type, data, metadata, recorded_at, "
            "stream_key) VALUES (?, ?, ?, randomblob(16), 'T', '{}', '{}', ?, ?)",
            (position, stream, version, recorded_at, key),
        )
    assert raw.execute("SELECT count(*) FROM events").fetchone() == (1,), why


def test_one_append_that_starts_a_stream_keys_all_its_events_to_its_first(
    path: Path, raw: sqlite3.Connection
) -> None:
    with EventStore.from_url(f"sqlite:///{path}") as store:
        store.append("a", 0, [event()])
        store.append("b", 0, [event() for _ in range(3)])
        store.append("a", 1, [event() for _ in range(2)])
    assert raw.execute("SELECT stream_id, version, stream_key FROM events ORDER BY position").fetchall() == [
        ("a", 1, 1),
        ("b", 1, 2),
        ("b", 2, 2),
        ("b", 3, 2),
        ("a", 2, 1),
        ("a", 3, 1),
    ]
    assert keys_are_first_positions(raw)
