"""The durable inbox: a verified delivery is an event in the store before the sender hears 2xx.

Each delivery gets its own stream, ``phabricator-inbox:<delivery key>``, whose first event is the
delivery and whose append also enqueues the work item that processes it (queue ``phabricator``), in
one transaction. A repeat of the same delivery (Phorge re-sends every 5 minutes after a failure, and
may send the same transactions twice) finds the stream there and is acknowledged without writing.
Processing happens later, on a worker; what it concluded is appended to the same stream
(``DeliveryProcessed``, ``DeliveryRetryScheduled``, ``DeliveryFailed``), so the stream tells the
delivery's whole story.

This module also holds the small helpers every phabricator work handler shares: the queue and kinds,
and :func:`finish` / :func:`retry_later`, which complete a claimed item in a fenced append, the
latter enqueueing the next attempt with a jittered exponential back-off (:class:`.Backoff`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from orchestrator.backoff import Backoff
from orchestrator.integrations.phabricator.webhook import Delivery
from orchestrator.store import (
    ClaimedWork,
    ConcurrencyError,
    DuplicateEventId,
    EventStore,
    NewEvent,
    WorkItem,
)

log = structlog.get_logger(__name__)

QUEUE = "phabricator"
DELIVERY = "phabricator.delivery"
HARBORMASTER = "phabricator.harbormaster"
CHECK = "phabricator.check"
RECONCILE = "phabricator.reconcile"
REPORT = "phabricator.report"
INBOX_PREFIX = "phabricator-inbox:"
NAMESPACE = uuid.UUID("5b1d0c9e-2f4a-4f7e-9d63-0c4b9a1e7d21")
MAX_ATTEMPTS = 30
"""Attempts of one work item before it is given up (recorded as failed); with the 5-minute cap and
the jitter that is one to two hours, the gates' reconcile loop still catches what a failed delivery
carried."""
MAX_DELAY = 300.0
"""The longest back-off between two attempts of a work item (seconds)."""


def event_id(*parts: str) -> uuid.UUID:
    """A deterministic event id: the same fact always gets the same id, so re-appending is a no-op."""
    return uuid.uuid5(NAMESPACE, "/".join(parts))


def inbox_stream(key: str) -> str:
    """The stream of the delivery named ``key``."""
    return f"{INBOX_PREFIX}{key}"


def accept(store: EventStore, delivery: Delivery, *, received_at: float) -> str:
    """Store ``delivery`` (and, unless it is a test call, the work that processes it).

    Returns ``"accepted"``, ``"test"`` (recorded, nothing else) or ``"duplicate"`` (stored already).
    Store errors propagate: the caller answers 5xx and Phorge sends again.
    """
    stream = inbox_stream(delivery.key)
    kind = "WebhookTestReceived" if delivery.test else "WebhookReceived"
    event = NewEvent(event_id(stream, "received"), kind, delivery.to_json(), {"received_at": received_at})
    work = [] if delivery.test else [work_item(stream, DELIVERY, {"stream": stream})]
    return _store_first(store, stream, event, work, "test" if delivery.test else "accepted")


def accept_harbormaster(store: EventStore, request: dict[str, Any], *, received_at: float) -> str:
    """Store a Harbormaster "Make HTTP Request" call (``target``, ``revision``, ``diff``, ``build``)."""
    stream = inbox_stream(f"hmbt-{request['target']}")
    event = NewEvent(
        event_id(stream, "received"), "HarbormasterRequested", request, {"received_at": received_at}
    )
    return _store_first(
        store, stream, event, [work_item(stream, HARBORMASTER, {"stream": stream})], "accepted"
    )


def _store_first(store: EventStore, stream: str, event: NewEvent, work: list[WorkItem], outcome: str) -> str:
    try:
        store.append(stream, 0, [event], enqueue=work)
    except (ConcurrencyError, DuplicateEventId):
        log.info("phabricator.delivery_repeated", stream=stream)
        return "duplicate"
    log.info("phabricator.delivery_stored", stream=stream, outcome=outcome)
    return outcome


def work_item(
    stream: str, kind: str, payload: dict[str, Any], *, attempt: int = 0, run_at: datetime | None = None
) -> WorkItem:
    """A work item of the phabricator queue about ``stream``; its id names the stream, kind and attempt."""
    base = str(payload.get("base") or f"{kind}|{stream}")
    return WorkItem(
        id=f"{base}|{attempt}",
        queue=QUEUE,
        stream_id=stream,
        kind=kind,
        payload=dict(payload, base=base, attempt=attempt),
        run_at=run_at,
    )


def finish(
    store: EventStore,
    work: ClaimedWork,
    worker_id: str,
    events: Sequence[NewEvent] = (),
    *,
    enqueue: Sequence[WorkItem] = (),
) -> None:
    """Append ``events`` to the work item's stream and complete the item, in one fenced transaction."""
    for _ in range(10):
        try:
            store.append(
                work.stream_id,
                store.stream_version(work.stream_id),
                list(events),
                enqueue=enqueue,
                complete=(work.id,),
                worker_id=worker_id,
            )
        except ConcurrencyError:
            continue
        return
    raise ConcurrencyError(work.stream_id, -1, -1)  # pragma: no cover - ten concurrent writers in a row


def retry_later(
    store: EventStore, work: ClaimedWork, worker_id: str, error: str, *, base_delay: float
) -> bool:
    """Complete ``work`` and enqueue its next attempt after a jittered exponential back-off: about
    ``base_delay`` doubling per attempt, up to :data:`MAX_DELAY`, each drawn from [d/2, d] so that the
    items that failed in one Conduit outage are not all tried again at the same moment.

    Records ``<Kind>RetryScheduled`` (or ``<Kind>Failed`` once :data:`MAX_ATTEMPTS` are spent) in the
    item's stream. Returns False when it gave up.
    """
    attempt = int(work.payload.get("attempt", 0)) + 1
    label = _label(work.kind)
    if attempt >= MAX_ATTEMPTS:
        log.warning("phabricator.gave_up", kind=work.kind, stream=work.stream_id, error=error)
        failed = NewEvent(
            event_id(work.id, "failed"), f"{label}Failed", {"attempts": attempt, "error": error}
        )
        finish(store, work, worker_id, [failed])
        return False
    delay = Backoff(min(base_delay, MAX_DELAY), MAX_DELAY).delay(attempt)
    run_at = datetime.now(UTC) + timedelta(seconds=delay)
    log.info(
        "phabricator.retry_scheduled", kind=work.kind, stream=work.stream_id, attempt=attempt, delay=delay
    )
    retried = NewEvent(
        event_id(work.id, "retry"),
        f"{label}RetryScheduled",
        {"attempt": attempt, "delay": delay, "error": error},
    )
    following = work_item(work.stream_id, work.kind, dict(work.payload), attempt=attempt, run_at=run_at)
    finish(store, work, worker_id, [retried], enqueue=[following])
    return True


def _label(kind: str) -> str:
    return {DELIVERY: "Delivery", HARBORMASTER: "Delivery", CHECK: "Check", REPORT: "Report"}.get(
        kind, "Work"
    )
