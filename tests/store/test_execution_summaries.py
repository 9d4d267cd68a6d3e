"""Execution summaries: kept by the database in the append's transaction, read with filters and pages.

Contract tests, on SQLite and PostgreSQL: what the projection records from the events of
``execution:`` streams (and ignores from the others), that a rejected append leaves no summary,
filters and pagination, and the backfill of migration 0003 over events stored before it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import create_engine, inspect

from orchestrator.store import ConcurrencyError, EventStore, ExecutionSummary, NewEvent, migrate

T0 = datetime(2030, 1, 1, tzinfo=UTC).timestamp()

START_META = {"state_machine": "m", "version": 3, "name": "n", "started_by": "ada", "alias": "prod"}


def ev(type_: str, ts: float | None = None, metadata: dict[str, Any] | None = None, **data: Any) -> NewEvent:
    """A history-like event: ``data.ts`` is the execution's clock."""
    if ts is not None:
        data["ts"] = ts
    return NewEvent(uuid.uuid4(), type_, data, metadata or {})


def start(
    store: EventStore, execution: str, ts: float, *, machine: str = "m", more: list[NewEvent] | None = None
) -> None:
    meta = dict(START_META, state_machine=machine, name=execution.rsplit(":", maxsplit=1)[-1])
    store.append(f"execution:{execution}", 0, [ev("ExecutionStarted", ts, meta), *(more or [])])


def only(store: EventStore, machine: str) -> list[ExecutionSummary]:
    return store.execution_summaries(state_machine=machine)


def test_a_start_is_summarised_with_the_facts_of_its_metadata(
    store: EventStore, unique: Callable[[str], str]
) -> None:
    machine = unique("m")
    start(store, f"{machine}:one", T0 + 1.25, machine=machine)
    [summary] = only(store, machine)
    assert summary == ExecutionSummary(
        stream_id=f"execution:{machine}:one",
        state_machine=machine,
        version=3,
        name="one",
        started_by="ada",
        status="RUNNING",
        started_at=datetime.fromtimestamp(T0 + 1.25, UTC),
        stopped_at=None,
        position=store.read_stream(f"execution:{machine}:one")[0].position,
    )
    assert summary.execution == f"{machine}:one"


@pytest.mark.parametrize(
    ("end", "status"),
    [
        ("ExecutionSucceeded", "SUCCEEDED"),
        ("ExecutionFailed", "FAILED"),
        ("ExecutionAborted", "ABORTED"),
        ("ExecutionTimedOut", "TIMED_OUT"),
    ],
)
def test_an_end_sets_status_and_stop_time_and_a_redrive_runs_again(
    store: EventStore, unique: Callable[[str], str], end: str, status: str
) -> None:
    machine = unique("m")
    stream = f"execution:{machine}:x"
    start(store, f"{machine}:x", T0, machine=machine)
    store.append(stream, 1, [ev("TaskScheduled", T0 + 1), ev(end, T0 + 2)])
    [ended] = only(store, machine)
    assert (ended.status, ended.stopped_at) == (status, datetime.fromtimestamp(T0 + 2, UTC))

    store.append(stream, 3, [ev("ExecutionRedriven", T0 + 3)])
    [redriven] = only(store, machine)
    assert (redriven.status, redriven.stopped_at, redriven.started_at) == ("RUNNING", None, ended.started_at)

    store.append(stream, 4, [ev("ExecutionSucceeded", T0 + 4)])
    assert only(store, machine)[0].status == "SUCCEEDED"


def test_a_start_and_its_end_in_one_append(store: EventStore, unique: Callable[[str], str]) -> None:
    machine = unique("m")
    more = [ev("PassStateEntered", T0), ev("ExecutionFailed", T0 + 0.5), ev("ExecutionRedriven", T0 + 1)]
    more.append(ev("ExecutionSucceeded", T0 + 2))
    start(store, f"{machine}:quick", T0, machine=machine, more=more)
    [summary] = only(store, machine)
    assert (summary.status, summary.stopped_at) == ("SUCCEEDED", datetime.fromtimestamp(T0 + 2, UTC))


def test_other_streams_and_events_are_not_summarised(store: EventStore, unique: Callable[[str], str]) -> None:
    machine = unique("m")
    meta = dict(START_META, state_machine=machine)
    store.append(f"execution-links:{machine}:a", 0, [ev("ExecutionStarted", T0, meta)])
    store.append(f"Execution:{machine}:b", 0, [ev("ExecutionStarted", T0, meta)])
    store.append(f"{machine}:c", 0, [ev("ExecutionStarted", T0, meta)])
    # Not at version 1: not the start of an execution.
    store.append(f"execution:{machine}:d", 0, [ev("Note", T0), ev("ExecutionStarted", T0, meta)])
    # An end without a start changes nothing either.
    store.append(f"execution:{machine}:e", 0, [ev("ExecutionSucceeded", T0, meta)])
    assert only(store, machine) == []


def test_odd_values_are_stored_as_unknown_and_never_reject_the_append(
    open_store: Callable[..., EventStore], clock: Any, unique: Callable[[str], str]
) -> None:
    store = open_store(clock=clock)
    machine = unique("m")
    odd = {"state_machine": machine, "version": "3", "name": 7, "started_by": None}
    started = NewEvent(uuid.uuid4(), "ExecutionStarted", {"ts": "yesterday"}, odd)
    store.append(f"execution:{machine}:odd", 0, [started])
    store.append(f"execution:{machine}:odd", 1, [ev("ExecutionFailed")])
    [summary] = only(store, machine)
    assert (summary.version, summary.name, summary.started_by) == (None, None, None)
    # No usable data.ts: the time the store recorded the event (its clock), to the millisecond.
    assert abs(summary.started_at - clock.now) < timedelta(milliseconds=1)
    assert summary.status == "FAILED" and summary.stopped_at is not None
    assert abs(summary.stopped_at - clock.now) < timedelta(milliseconds=1)


def test_a_rejected_append_leaves_no_summary(store: EventStore, unique: Callable[[str], str]) -> None:
    machine = unique("m")
    stream = f"execution:{machine}:x"
    start(store, f"{machine}:x", T0, machine=machine)
    with pytest.raises(ConcurrencyError):
        store.append(stream, 0, [ev("ExecutionStarted", T0 + 9, dict(START_META, state_machine=machine))])
    with pytest.raises(ConcurrencyError):
        store.append(stream, 5, [ev("ExecutionSucceeded", T0 + 9)])
    assert [(s.status, s.started_at.timestamp()) for s in only(store, machine)] == [("RUNNING", T0)]


def test_filters_and_pages_newest_first(store: EventStore, unique: Callable[[str], str]) -> None:
    machine, other = unique("m"), unique("o")
    for n in range(5):
        start(store, f"{machine}:e{n}", T0 + n, machine=machine)
    start(store, f"{machine}:tie", T0 + 4, machine=machine)  # same start as e4, appended later
    start(store, f"{other}:x", T0 + 2, machine=other)
    store.append(f"execution:{machine}:e1", 1, [ev("ExecutionFailed", T0 + 10)])
    store.append(f"execution:{machine}:e3", 1, [ev("ExecutionFailed", T0 + 10)])

    def names(**query: Any) -> list[str]:
        return [s.name or "" for s in store.execution_summaries(state_machine=machine, **query)]

    assert names() == ["tie", "e4", "e3", "e2", "e1", "e0"]
    assert names(limit=2) == ["tie", "e4"]
    assert names(limit=2, offset=2) == ["e3", "e2"]
    assert names(offset=5) == ["e0"]
    assert names(limit=0) == []
    assert names(status="FAILED") == ["e3", "e1"]
    assert names(status="RUNNING", limit=1, offset=1) == ["e4"]
    at = lambda seconds: datetime.fromtimestamp(T0 + seconds, UTC)  # noqa: E731
    assert names(started_after=at(1), started_before=at(4)) == ["e3", "e2"]
    assert names(started_before=at(1)) == ["e0"]
    assert store.count_execution_summaries(state_machine=machine) == 6
    assert store.count_execution_summaries(state_machine=machine, status="FAILED") == 2
    assert store.count_execution_summaries(state_machine=machine, started_after=at(3)) == 2
    assert [s.state_machine for s in store.execution_summaries(started_after=at(-1))].count(other) == 1


def test_bad_queries_are_refused(store: EventStore) -> None:
    with pytest.raises(ValueError, match="limit and offset"):
        store.execution_summaries(limit=-1)
    with pytest.raises(ValueError, match="limit and offset"):
        store.execution_summaries(offset=-1)
    with pytest.raises(ValueError, match="timezone-aware"):
        store.execution_summaries(started_after=datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        store.count_execution_summaries(started_before=datetime(2030, 1, 1))


def test_the_migration_backfills_what_the_appends_would_have_kept(
    store_url: str, unique: Callable[[str], str]
) -> None:
    machine = unique("m")
    with EventStore.from_url(store_url) as store:
        start(store, f"{machine}:done", T0, machine=machine)
        stream = f"execution:{machine}:done"
        store.append(stream, 1, [ev("ExecutionFailed", T0 + 1), ev("ExecutionRedriven", T0 + 2)])
        store.append(stream, 3, [ev("ExecutionSucceeded", T0 + 3)])
        start(store, f"{machine}:running", T0 + 5, machine=machine)
        start(store, f"{machine}:failed", T0 + 6, machine=machine, more=[ev("ExecutionFailed", T0 + 7)])
        store.append(f"execution-links:{machine}:done", 0, [ev("ExecutionResetTo", T0)])
        kept = store.execution_summaries()
    assert {s.name: (s.status, s.stopped_at) for s in kept} == {
        "done": ("SUCCEEDED", datetime.fromtimestamp(T0 + 3, UTC)),
        "running": ("RUNNING", None),
        "failed": ("FAILED", datetime.fromtimestamp(T0 + 7, UTC)),
    }

    # Back to the schema of the previous release (no summaries), and up again: the backfill.
    assert migrate.downgrade(store_url, "0002") == "0002"
    assert "execution_summaries" not in tables(store_url)
    assert migrate.upgrade(store_url) == migrate.HEAD
    with EventStore.from_url(store_url) as store:
        assert store.execution_summaries() == kept
        # And the appends keep them current from then on.
        store.append(f"execution:{machine}:running", 1, [ev("ExecutionAborted", T0 + 8)])
        assert [s.name for s in store.execution_summaries(status="ABORTED")] == ["running"]


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_postgres_appends_of_the_previous_release_keep_the_summaries_current(store_url: str) -> None:
    """Workers of the previous release call orchestrator_append_v2 (or _v1): the trigger serves them too."""
    with EventStore.from_url(store_url) as store:
        start(store, "m:old", T0)
    conninfo = store_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as old_worker:
        for function, version, type_ in (("v1", 1, "ExecutionFailed"), ("v2", 2, "ExecutionRedriven")):
            events = json.dumps(
                [{"id": str(uuid.uuid4()), "type": type_, "data": {"ts": T0 + version}, "metadata": {}}]
            )
            old_worker.execute(
                f"SELECT orchestrator_append_{function}"
                "(%s, %s, now(), %s::json, NULL, '{}', '[]', NULL, NULL)",
                ("execution:m:old", version, events),
            )
            with EventStore.from_url(store_url) as store:
                [summary] = store.execution_summaries()
            assert summary.status == ("FAILED" if type_ == "ExecutionFailed" else "RUNNING")


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
