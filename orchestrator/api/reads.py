"""The read side shared by the JSON API and the web UI: pages of executions, history and state machines.

Everything here calls the runtime's services (``Executions.list``/``load``/``lineage``,
``Registry.get``/``names``) and shapes their answers; nothing reads the store directly, so a faster
projection behind those services speeds up both the API and the UI.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from orchestrator.engine.events import HistoryEvent, iso
from orchestrator.errors import UsageError
from orchestrator.registry.model import StateMachine, Version
from orchestrator.registry.service import UnknownStateMachine
from orchestrator.runtime import Runtime

STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT")
REDRIVABLE = ("FAILED", "TIMED_OUT", "ABORTED")
"""The statuses of executions that can be redriven."""


@dataclass(frozen=True, slots=True)
class Page:
    """A slice of a longer list."""

    items: list[dict[str, Any]]
    total: int
    offset: int
    limit: int

    @property
    def next_offset(self) -> int | None:
        """Where the next page starts, or None on the last page."""
        return self.offset + self.limit if self.offset + self.limit < self.total else None

    def to_json(self, key: str) -> dict[str, Any]:
        """``{key: items, "total", "offset", "limit", "nextOffset"}``."""
        return {
            key: self.items,
            "total": self.total,
            "offset": self.offset,
            "limit": self.limit,
            "nextOffset": self.next_offset,
        }


class Versions:
    """Folded state machines for one request: each read once, however many rows name it."""

    def __init__(self, runtime: Runtime) -> None:
        """Over ``runtime``'s registry."""
        self._runtime = runtime
        self._machines: dict[str, StateMachine | None] = {}

    def machine(self, name: str) -> StateMachine | None:
        """The state machine ``name``, or None if it was never published."""
        if name not in self._machines:
            try:
                self._machines[name] = self._runtime.registry.get(name)
            except UnknownStateMachine:
                self._machines[name] = None
        return self._machines[name]

    def version(self, name: str, number: Any) -> Version | None:
        """Version ``number`` of ``name``, or None."""
        machine = self.machine(name)
        return machine.version(int(number)) if machine is not None and str(number).isdigit() else None


def executions_page(
    runtime: Runtime, *, state_machine: str | None, status: str | None, offset: int, limit: int
) -> Page:
    """A page of executions, newest first, each with who approved its version and its duration."""
    rows = runtime.executions.list(state_machine=state_machine, status=status, limit=limit, offset=offset)
    total = runtime.store.count_execution_summaries(
        state_machine=state_machine, status=None if status is None else status.upper()
    )
    versions = Versions(runtime)
    items = []
    for row in rows:
        version = versions.version(str(row.get("stateMachine")), row.get("version"))
        items.append(
            {
                **row,
                "approvedBy": version.approved_by if version is not None else None,
                "revision": version.revision if version is not None else None,
                "durationSeconds": duration(row.get("startDate"), row.get("stopDate")),
            }
        )
    return Page(items, total, offset, limit)


def duration(start: Any, stop: Any) -> float | None:
    """Seconds between two ISO times (None when either is missing)."""
    if not isinstance(start, str) or not isinstance(stop, str):
        return None
    return round(_parse(stop) - _parse(start), 3)


def _parse(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def history_page(events: list[HistoryEvent], *, offset: int, limit: int, reverse: bool) -> Page:
    """A page of ``events`` in the shape of ``get-execution-history`` (plus ``scope``)."""
    ordered = list(reversed(events)) if reverse else events
    return Page([event_json(e) for e in ordered[offset : offset + limit]], len(events), offset, limit)


def event_json(event: HistoryEvent) -> dict[str, Any]:
    """One event as ``get-execution-history`` shows it, with its thread (``scope``) when not top level."""
    out = event.to_aws()
    if event.scope:
        out["scope"] = event.scope
    return out


def version_json(version: Version, *, definition: bool = False) -> dict[str, Any]:
    """A version: number, digest, who published it from which revision, who approved it."""
    out: dict[str, Any] = {
        "version": version.version,
        "sha256": version.sha256,
        "description": version.description,
        "publishedBy": version.published_by,
        "publishedAt": iso(version.published_at),
        "revision": version.revision,
        "approvedBy": version.approved_by,
    }
    if definition:
        out["definition"] = version.definition
    return out


def aliases_json(machine: StateMachine) -> list[dict[str, Any]]:
    """Every alias with its current routing and its history of changes (oldest first)."""
    return [
        {
            "alias": alias.name,
            "routing": [r.to_json() for r in alias.routing],
            "history": [
                {"type": c["type"], "routing": c["routing"], "at": iso(c["at"]), "by": c.get("by", "")}
                for c in alias.changes
            ],
        }
        for alias in sorted(machine.aliases.values(), key=lambda a: a.name)
    ]


def state_machine_json(machine: StateMachine) -> dict[str, Any]:
    """A state machine: its versions (newest last) and aliases."""
    return {
        "name": machine.name,
        "versions": [version_json(v) for v in machine.versions],
        "aliases": aliases_json(machine),
    }


def state_machines(runtime: Runtime) -> list[dict[str, Any]]:
    """Every state machine, with its latest version and aliases."""
    out = []
    for name in runtime.registry.names():
        machine = runtime.registry.get(name)
        latest = machine.latest
        out.append(
            {
                "name": name,
                "versions": len(machine.versions),
                "latest": version_json(latest) if latest is not None else None,
                "aliases": {a.name: [r.to_json() for r in a.routing] for a in machine.aliases.values()},
            }
        )
    return out


def external_runs(history: Iterable[HistoryEvent]) -> list[dict[str, Any]]:
    """The runs a task started in another system (``ExternalRunStarted``), with their links."""
    return [{"event": e.id, "scope": e.scope, **e.details} for e in history if e.type == "ExternalRunStarted"]


def role_sessions(history: Iterable[HistoryEvent]) -> list[dict[str, Any]]:
    """The AWS role sessions tasks ran under (``RoleAssumed``)."""
    return [{"event": e.id, "scope": e.scope, **e.details} for e in history if e.type == "RoleAssumed"]


def approvals(history: Iterable[HistoryEvent]) -> list[dict[str, Any]]:
    """Approvals granted or rejected during the execution."""
    kinds = ("ApprovalGranted", "ApprovalRejected")
    return [{"event": e.id, "type": e.type, **e.details} for e in history if e.type in kinds]


def revision_url(runtime: Runtime, revision: str | None) -> str | None:
    """A link to the revision in Phabricator, when ``[phabricator] url`` is configured."""
    if not revision:
        return None
    try:
        base: Mapping[str, Any] = runtime.config.section("phabricator")
    except UsageError:  # a bad section is the phabricator integration's to report
        return None
    url = base.get("url") or base.get("base_url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return None
    return f"{url.rstrip('/')}/{revision.lstrip('/')}"
