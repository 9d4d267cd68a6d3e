"""A failed Phabricator work item is tried again after a jittered, growing, capped delay, so items
that failed in one Conduit outage do not all come back at the same moment. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.integrations.phabricator import inbox
from orchestrator.store import EventStore, NewEvent


@pytest.fixture
def store(database_url: str) -> Iterator[EventStore]:
    opened = EventStore.from_url(database_url, auto_upgrade=True)
    yield opened
    opened.close()


def fail_once(store: EventStore, stream: str, *, attempt: int, base_delay: float) -> float:
    """Store a delivery whose work item is at ``attempt``, claim it, fail it: the delay recorded, which
    is also when the next attempt is due."""
    item = inbox.work_item(stream, inbox.DELIVERY, {"stream": stream}, attempt=attempt)
    store.append(
        stream, 0, [NewEvent(inbox.event_id(stream, "received"), "WebhookReceived", {})], enqueue=[item]
    )
    (claimed,) = store.claim("w1", [inbox.QUEUE], 1, 30.0)
    before = datetime.now(UTC)
    assert inbox.retry_later(store, claimed, "w1", "HTTP 500", base_delay=base_delay)
    retried = store.read_stream(stream)[-1]
    assert retried.type == "DeliveryRetryScheduled" and retried.data["attempt"] == attempt + 1
    (following,) = store.claim("w2", [inbox.QUEUE], 1, 30.0, now=before + timedelta(days=1))
    assert following.payload["attempt"] == attempt + 1
    delay = float(retried.data["delay"])
    slack = timedelta(milliseconds=5)  # what a backend may round a timestamp by
    assert before + timedelta(seconds=delay) - slack <= following.run_at
    assert following.run_at <= datetime.now(UTC) + timedelta(seconds=delay) + slack
    store.append(stream, store.stream_version(stream), [], complete=(following.id,), worker_id="w2")
    return delay


def test_the_first_retry_waits_between_half_and_all_of_the_base_delay(store: EventStore) -> None:
    delays = [fail_once(store, f"phabricator-inbox:first-{n}", attempt=0, base_delay=8.0) for n in range(8)]
    assert all(4.0 <= d <= 8.0 for d in delays), delays
    assert len(set(delays)) > 1  # jittered: not the same moment for every failed item


def test_later_retries_grow_and_stop_at_the_cap(store: EventStore) -> None:
    third = fail_once(store, "phabricator-inbox:third", attempt=2, base_delay=8.0)
    assert 16.0 <= third <= 32.0  # 8 * 2**2, drawn from its upper half
    late = [fail_once(store, f"phabricator-inbox:late-{n}", attempt=20, base_delay=8.0) for n in range(4)]
    assert all(inbox.MAX_DELAY / 2 <= d <= inbox.MAX_DELAY for d in late), late
    huge = fail_once(store, "phabricator-inbox:huge", attempt=3, base_delay=10 * inbox.MAX_DELAY)
    assert inbox.MAX_DELAY / 2 <= huge <= inbox.MAX_DELAY  # a base above the cap is the cap
