"""Publishing versions and moving aliases, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from orchestrator.errors import UsageError
from orchestrator.registry.service import Registry, UnknownStateMachine, diff
from orchestrator.store import EventStore

PASS = {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}
PASS2 = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": 2, "End": True}}}


@pytest.fixture
def registry(database_url: str) -> Registry:
    store = EventStore.from_url(database_url, auto_upgrade=True)
    yield Registry(store)
    store.close()


def test_versions_are_numbered_and_content_addressed(registry: Registry) -> None:
    v1, created1 = registry.publish("m", PASS, published_by="ada")
    same, created_again = registry.publish(
        "m", {"States": PASS["States"], "StartAt": "A"}
    )  # key order differs
    v2, created2 = registry.publish("m", PASS2)
    assert (v1.version, created1) == (1, True)
    assert (same.version, created_again) == (1, False)
    assert (v2.version, created2) == (2, True)
    assert v1.sha256 != v2.sha256 and len(v1.sha256) == 64
    assert registry.get("m").version(1).published_by == "ada"  # type: ignore[union-attr]
    assert registry.names() == ["m"]


def test_invalid_definition_is_refused_and_nothing_is_written(registry: Registry) -> None:
    with pytest.raises(UsageError, match=r"Nextt|not allowed|unknown"):
        registry.publish("m", {"StartAt": "A", "States": {"A": {"Type": "Pass", "Nextt": "B", "End": True}}})
    with pytest.raises(UnknownStateMachine):
        registry.get("m")
    with pytest.raises(UsageError, match="invalid state machine name"):
        registry.publish("bad name!", PASS)


def test_alias_set_resolve_and_rollback(registry: Registry) -> None:
    registry.publish("m", PASS)
    registry.publish("m", PASS2)
    registry.set_alias("m", "prod", [(1, None)])
    assert registry.resolve("m:prod").version.version == 1
    registry.set_alias("m", "prod", [(2, None)])
    assert registry.resolve("m:prod").version.version == 2
    back = registry.rollback_alias("m", "prod")
    assert [r.version for r in back] == [1]
    assert registry.resolve("m:prod").version.version == 1
    changes = registry.get("m").aliases["prod"].changes
    assert [c["type"] for c in changes] == ["AliasUpdated", "AliasUpdated", "AliasRolledBack"]
    with pytest.raises(UsageError, match="no earlier routing"):
        registry.rollback_alias("m", "prod")
    assert registry.resolve("m").version.version == 2  # bare name: the latest
    assert registry.resolve("m:1").version.version == 1


def test_alias_errors_are_clear(registry: Registry) -> None:
    registry.publish("m", PASS)
    with pytest.raises(UsageError, match="no version 7"):
        registry.set_alias("m", "prod", [(7, None)])
    with pytest.raises(UsageError, match="sum to 100"):
        registry.set_alias("m", "prod", [(1, 60), (2, 60)])
    with pytest.raises(UsageError, match="no alias 'nope'"):
        registry.resolve("m:nope")
    with pytest.raises(UnknownStateMachine):
        registry.resolve("other")


def test_weighted_routing_splits_traffic_within_tolerance(registry: Registry) -> None:
    registry.publish("m", PASS)
    registry.publish("m", PASS2)
    registry.set_alias("m", "canary", [(1, 90), (2, 10)])
    rng = random.Random(7)
    picks = Counter(registry.resolve("m:canary", rng=rng).version.version for _ in range(2000))
    assert set(picks) == {1, 2}
    assert 0.07 < picks[2] / 2000 < 0.13


def test_structural_diff() -> None:
    changes = diff(PASS, PASS2)
    assert changes == [{"op": "add", "path": "/States/A/Result", "new": 2}]
    assert diff(PASS, PASS) == []


def test_what_another_process_publishes_or_routes_is_seen_at_once(database_url: str) -> None:
    """Each registry caches what it folded and reads only what came after: another registry's
    (another process's) new versions and alias moves are seen by the next call."""
    here = EventStore.from_url(database_url, auto_upgrade=True)
    there = EventStore.from_url(database_url)
    try:
        mine, theirs = Registry(here), Registry(there)
        mine.publish("m", PASS)
        assert mine.resolve("m").version.version == 1
        assert mine.get("m") is mine.get("m")  # nothing new: the cached fold

        theirs.publish("m", PASS2)
        theirs.set_alias("m", "prod", [(1, None)])
        assert mine.resolve("m").version.version == 2
        assert mine.resolve("m:prod").version.version == 1
        theirs.set_alias("m", "prod", [(2, None)])
        assert mine.resolve("m:prod").version.version == 2
        theirs.rollback_alias("m", "prod")
        assert mine.resolve("m:prod").version.version == 1
    finally:
        here.close()
        there.close()
