"""Contract: events are never updated nor deleted, whatever the SQL; the database refuses."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from orchestrator.store import EventStore

from .helpers import event


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE events SET type = 'Rewritten' WHERE stream_id = '{stream}'",
        "UPDATE events SET data = '{{}}'",
        "DELETE FROM events WHERE stream_id = '{stream}'",
        "DELETE FROM events",
    ],
)
def test_raw_updates_and_deletes_of_events_fail(
    store: EventStore, raw_sql: Callable[[str], None], unique: Callable[[str], str], statement: str
) -> None:
    stream = unique("exec")
    recorded = store.append(stream, 0, [event(), event()])

    with pytest.raises(Exception, match="append-only") as raised:
        raw_sql(statement.format(stream=stream))

    assert "database is locked" not in str(raised.value)
    assert store.read_stream(stream) == recorded


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
@pytest.mark.parametrize("statement", ["TRUNCATE events", "UPDATE events SET type = 'x' WHERE false"])
def test_postgres_refuses_truncate_and_even_empty_updates(
    store: EventStore, raw_sql: Callable[[str], None], unique: Callable[[str], str], statement: str
) -> None:
    stream = unique("exec")
    recorded = store.append(stream, 0, [event()])
    with pytest.raises(Exception, match="append-only"):
        raw_sql(statement)
    assert store.read_stream(stream) == recorded
