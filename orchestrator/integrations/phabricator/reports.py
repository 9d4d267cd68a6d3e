"""Report back: when an execution started by a revision or a build ends, tell Phabricator.

Design: starting an execution from a revision (or a Harbormaster build step) also writes
``ReportRequested`` to the stream ``phabricator-report:<execution>``, with a ``phabricator.report``
work item due a little later. The handler looks at the execution: still running, it completes the
item and enqueues the next look with a growing interval (an empty, fenced append: no event per
poll); ended, it posts the outcome, a comment with a link to the execution page
(``differential.revision.edit``) or a pass/fail message to the waiting build target
(``harbormaster.sendmessage``), and records ``ReportPosted`` completing the item in one append.
Conduit failing is retried with back-off like every phabricator work item.

Why a watcher per execution rather than a hook in the engine: executions must not know about their
triggers' systems, and the work queue is already durable, leased and fenced. The cost is a report
up to one poll interval (at most ten times ``report_poll_seconds``) after the end.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import structlog

from orchestrator.executions.service import TERMINAL, Loaded
from orchestrator.integrations.phabricator.inbox import QUEUE, REPORT, event_id, work_item
from orchestrator.store import ConcurrencyError, DuplicateEventId, EventStore, NewEvent, WorkItem

log = structlog.get_logger(__name__)

REPORT_PREFIX = "phabricator-report:"


def report_stream(execution: str) -> str:
    """The stream of the report about ``execution``."""
    return f"{REPORT_PREFIX}{execution}"


def watch(store: EventStore, execution: str, target: dict[str, Any], *, poll_seconds: float) -> None:
    """Report ``execution``'s outcome to ``target`` once it ends (``{"kind": "comment", "revision":
    "D12"}`` or ``{"kind": "harbormaster", "target": "PHID-HMBT-..."}``); idempotent."""
    stream = report_stream(execution)
    event = NewEvent(event_id(stream, "requested"), "ReportRequested", {"execution": execution, **target})
    first = work_item(
        stream,
        REPORT,
        {"execution": execution},
        run_at=datetime.now(UTC) + timedelta(seconds=poll_seconds),
    )
    try:
        store.append(stream, 0, [event], enqueue=[first])
    except (ConcurrencyError, DuplicateEventId):
        return


def next_look(stream: str, payload: dict[str, Any], poll_seconds: float) -> WorkItem:
    """The next look at a running execution: intervals grow 1.5x up to ten times ``poll_seconds``."""
    looks = int(payload.get("looks", 0)) + 1
    delay = min(poll_seconds * 1.5**looks, poll_seconds * 10)
    return WorkItem(
        id=f"{payload['base']}|look-{looks}",
        queue=QUEUE,
        stream_id=stream,
        kind=REPORT,
        payload=dict(payload, looks=looks),
        run_at=datetime.now(UTC) + timedelta(seconds=delay),
    )


def ended(loaded: Loaded) -> bool:
    """Whether the execution has ended."""
    return loaded.status in TERMINAL


def comment(loaded: Loaded, public_url: str) -> str:
    """The comment posted on the revision."""
    link = f"{public_url}/executions/{quote(loaded.id, safe='')}"
    line = f"Orchestrator: execution `{loaded.id}` **{loaded.status}**"
    if loaded.status != "SUCCEEDED" and loaded.machine.error:
        line += f": {loaded.machine.error}"
        if loaded.machine.cause:
            line += f" ({str(loaded.machine.cause)[:500]})"
    return f"{line}.\n\n{link}"


def harbormaster_message(loaded: Loaded, public_url: str) -> tuple[str, list[dict[str, Any]]]:
    """``pass``/``fail`` and the unit result sent to the build target."""
    kind = "pass" if loaded.status == "SUCCEEDED" else "fail"
    unit = {
        "name": loaded.id,
        "result": kind,
        "details": f"{loaded.status} {public_url}/executions/{quote(loaded.id, safe='')}",
    }
    return kind, [unit]


def pending_report(store: EventStore, stream: str) -> dict[str, Any] | None:
    """The ``ReportRequested`` data if the report is still to post; None once posted."""
    records = store.read_stream(stream)
    if not records or any(r.type == "ReportPosted" for r in records):
        return None
    return dict(records[0].data)
