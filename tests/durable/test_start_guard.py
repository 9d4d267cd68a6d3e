"""Starts resolve from the registry's cached fold and are guarded by its version, on SQLite and
PostgreSQL.

A start reads no registry stream when its cache is current; when another process published a version
or moved an alias since, the store refuses the start's append (the guard) and the start refreshes
the registry and runs on what it now says.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from orchestrator.errors import UsageError
from orchestrator.executions.service import START_ATTEMPTS, ExecutionConflict, Executions
from orchestrator.registry.service import Registry, Resolved
from orchestrator.store import EventStore, RecordedEvent

PASS = {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}
PASS2 = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": 2, "End": True}}}
PASS3 = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": 3, "End": True}}}
REGISTRY_STREAM = "statemachine:m"


class ReadCountingStore(EventStore):
    """The real store, counting the reads of each stream."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reads: Counter[str] = Counter()

    def read_stream(
        self, stream_id: str, from_version: int = 1, limit: int | None = None
    ) -> list[RecordedEvent]:
        self.reads[stream_id] += 1
        return super().read_stream(stream_id, from_version, limit)


@pytest.fixture
def here(database_url: str) -> Iterator[ReadCountingStore]:
    store = ReadCountingStore.from_url(database_url, auto_upgrade=True)
    assert isinstance(store, ReadCountingStore)
    yield store
    store.close()


@pytest.fixture
def there(database_url: str, here: EventStore) -> Iterator[EventStore]:
    """Another process's store on the same database (opened after ``here`` upgraded it)."""
    store = EventStore.from_url(database_url)
    yield store
    store.close()


def stored_version(store: EventStore, execution: str) -> tuple[int, str | None]:
    """The version and alias in the metadata of the execution's first stored event."""
    first = store.read_stream(f"execution:{execution}", 1, 1)[0]
    return int(first.metadata["version"]), first.metadata["alias"]


def test_a_start_with_a_current_cache_reads_no_registry_stream(here: ReadCountingStore) -> None:
    registry = Registry(here)
    registry.publish("m", PASS)
    registry.set_alias("m", "prod", [(1, None)])
    executions = Executions(here, registry)
    executions.start("m", {}, name="warm")  # the registry is folded by now
    here.reads.clear()

    for n in range(3):
        loaded, created = executions.start("m:prod", {"n": n}, name=f"e{n}")
        assert created and loaded.status == "SUCCEEDED" and loaded.meta["version"] == 1
    executions.start("m", {}, name="bare")
    executions.start("m:1", {}, name="numbered")

    assert here.reads[REGISTRY_STREAM] == 0


def test_a_stale_cache_starts_on_the_version_another_process_published(
    here: ReadCountingStore, there: EventStore
) -> None:
    mine, theirs = Registry(here), Registry(there)
    mine.publish("m", PASS)
    executions = Executions(here, mine)
    assert executions.start("m", {}, name="before")[0].meta["version"] == 1

    theirs.publish("m", PASS2)  # not seen by mine: its cached fold is at registry version 1
    here.reads.clear()
    loaded, created = executions.start("m", {"x": 1}, name="after")

    assert created and loaded.meta["version"] == 2
    assert loaded.machine.output == 2  # the definition of version 2 ran
    assert stored_version(there, loaded.id) == (2, None)
    assert here.reads[REGISTRY_STREAM] == 1  # the refresh after the refused append, and no more
    # Idempotence and conflicts are as before.
    again, created_again = executions.start("m", {"x": 1}, name="after")
    assert not created_again and again.id == loaded.id
    with pytest.raises(ExecutionConflict, match="different input"):
        executions.start("m", {"x": 2}, name="after")


def test_a_stale_cache_follows_an_alias_another_process_moved(here: EventStore, there: EventStore) -> None:
    mine, theirs = Registry(here), Registry(there)
    mine.publish("m", PASS)
    mine.publish("m", PASS2)
    mine.set_alias("m", "prod", [(1, None)])
    executions = Executions(here, mine)
    assert executions.start("m:prod", {}, name="before")[0].meta["version"] == 1

    theirs.set_alias("m", "prod", [(2, None)])
    loaded, _ = executions.start("m:prod", {}, name="moved")
    assert (loaded.meta["version"], loaded.meta["alias"]) == (2, "prod")
    assert stored_version(there, loaded.id) == (2, "prod")

    theirs.rollback_alias("m", "prod")
    assert stored_version(there, executions.start("m:prod", {}, name="rolled-back")[0].id) == (1, "prod")


def test_what_the_cache_does_not_know_is_read(here: ReadCountingStore, there: EventStore) -> None:
    """A version or alias created elsewhere and not in the cache: resolved after one read, no
    refused append needed."""
    mine, theirs = Registry(here), Registry(there)
    mine.publish("m", PASS)
    executions = Executions(here, mine)
    executions.start("m", {}, name="warm")
    theirs.publish("m", PASS2)
    theirs.set_alias("m", "canary", [(2, None)])

    assert executions.start("m:canary", {}, name="c")[0].meta["version"] == 2
    assert executions.start("m:2", {}, name="two")[0].meta["version"] == 2
    with pytest.raises(UsageError, match="no version 3"):
        executions.start("m:3", {}, name="three")


def test_a_state_machine_never_folded_here_is_read(here: ReadCountingStore, there: EventStore) -> None:
    Registry(there).publish("m", PASS)
    registry = Registry(here)
    resolved = registry.resolve("m", fresh=False)
    assert resolved == Resolved(resolved.version, None, 1) and resolved.version.version == 1
    assert here.reads[REGISTRY_STREAM] == 1


def test_resolve_says_which_registry_version_it_is_based_on(here: EventStore, there: EventStore) -> None:
    mine, theirs = Registry(here), Registry(there)
    mine.publish("m", PASS)
    mine.set_alias("m", "prod", [(1, None)])
    assert mine.resolve("m:prod").registry_version == 2
    theirs.publish("m", PASS2)
    stale = mine.resolve("m", fresh=False)
    assert (stale.version.version, stale.registry_version) == (1, 2)
    fresh = mine.resolve("m")
    assert (fresh.version.version, fresh.registry_version) == (2, 3)


class MovingRegistry(Registry):
    """A registry whose state machine another process changes after every resolution: the worst
    case of a start racing alias moves."""

    def __init__(self, store: EventStore, mover: Registry) -> None:
        super().__init__(store)
        self.mover = mover
        self.resolutions = 0

    def resolve(self, reference: str, *, rng: random.Random | None = None, fresh: bool = True) -> Resolved:
        resolved = super().resolve(reference, rng=rng, fresh=fresh)
        self.resolutions += 1
        self.mover.set_alias("m", "prod", [(1 + self.resolutions % 2, None)])
        return resolved


def test_a_start_gives_up_clearly_when_the_registry_keeps_moving(here: EventStore, there: EventStore) -> None:
    theirs = Registry(there)
    theirs.publish("m", PASS)
    theirs.publish("m", PASS3)
    registry = MovingRegistry(here, theirs)
    executions = Executions(here, registry)

    with pytest.raises(UsageError, match=r"could not start 'm:1'.*registry changed"):
        executions.start("m:1", {}, name="never")

    assert registry.resolutions == START_ATTEMPTS
    assert here.read_stream("execution:m:never") == []
