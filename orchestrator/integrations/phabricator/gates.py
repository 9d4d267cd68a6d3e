"""Approval gates: a Task state with ``"Resource": "phabricator:approval"`` waits for a review.

::

    "Approve": {"Type": "Task", "Resource": "phabricator:approval",
                "Parameters": {"Revision.$": "$.revision", "Reviewers": ["carol", "#release-managers"],
                               "MinApprovals": 1, "ResetOnNewDiff": true, "AbortOnNewDiff": false},
                "TimeoutSeconds": 86400, "Next": "Deploy"}

The executor (:func:`request`) records ``ApprovalRequested`` in the execution, writes the gate into
the index stream ``phabricator-gates`` (``GateOpened``) together with a work item that checks the
revision at once and one that starts the reconcile loop, and returns ``PENDING``: no worker waits.

Whenever the revision is looked at (a webhook delivery, the first check, the reconcile loop),
:func:`decide` compares its current state with each open gate on it, purely: abandoned fails the
task with ``Phabricator.Abandoned``; changes requested with ``Phabricator.Rejected``; enough accepts
from the named reviewers (of the current diff only, when ``ResetOnNewDiff``), each from a member of
every project the state machine's roles require, release it, the approval record being the task's
result. An accept from anyone else is recorded as ``ApprovalRejected`` with
``Phabricator.NotAuthorized`` and does not count. :func:`answer` records the decision in the task's
thread and answers the task; each recorded event is looked for first, so answering twice is harmless.
A gate whose task no longer waits (``TimeoutSeconds`` fired ``States.Timeout``, the execution was
stopped) is ``gone``: the index closes it the next time its revision is looked at, and a late accept
changes nothing.

A new diff after the release (``ResetOnNewDiff``, the default). A task that succeeded cannot be made
pending again, so the approval is revoked instead: with ``ResetOnNewDiff`` the released gate stays in
the index as *watched* (``GateReleased``, with the approved diff) while its execution runs. If the
revision's current diff is then another one, :func:`revoke_if_changed` records ``ApprovalRejected``
with ``Phabricator.DiffChanged`` in the execution (approver, approved and new diff, who uploaded it;
it shows in ``lineage``), and with ``AbortOnNewDiff`` (default: ``[phabricator] abort_on_new_diff``,
false) stops the execution with the error ``Phabricator.DiffChanged``, since what its later states
would do is no longer what was approved. The watch ends (``GateClosed``) when the execution ends, or
once it revoked. Gates inside a loop that comes back to the approval state open a new gate, where
only accepts of the current diff count. Without ``ResetOnNewDiff`` the gate closes at release, and
accepts of older diffs count.

The index is one stream, folded into the gates open now; its cost stays bounded by saving that fold
as the stream's snapshot every :data:`SNAPSHOT_EVERY` events (``EventStore.append(snapshot=...)``),
so a check reads the snapshot (the open gates only) and at most that many events after it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from orchestrator.errors import UsageError
from orchestrator.executions.service import Executions
from orchestrator.executions.tasks import TaskContext, TaskError
from orchestrator.integrations.phabricator.inbox import CHECK, QUEUE, RECONCILE, event_id, work_item
from orchestrator.integrations.phabricator.reviews import RevisionView
from orchestrator.store import ConcurrencyError, DuplicateEventId, EventStore, NewEvent, Snapshot, WorkItem

log = structlog.get_logger(__name__)

GATES_STREAM = "phabricator-gates"
RECONCILE_STREAM = "phabricator-reconcile"
DIFF_CHANGED = "Phabricator.DiffChanged"
_MONOGRAM = re.compile(r"^D?([0-9]{1,12})$")
_REVISION_PHID = re.compile(r"^PHID-DREV-[A-Za-z0-9]+$")


@dataclass(frozen=True)
class Gate:
    """One open approval gate: the pending task ``token`` of ``execution`` waits on ``revision``."""

    execution: str
    token: str
    state: str
    revision: str
    """``PHID-DREV-...`` or ``D12``."""
    reviewers: tuple[str, ...] = ()
    """Usernames, ``#project`` slugs or project PHIDs; empty: any reviewer."""
    min_approvals: int = 1
    reset_on_new_diff: bool = True
    groups: tuple[str, ...] = ()
    """Projects every approver must be a member of (from the role map)."""
    abort_on_new_diff: bool = False
    """A new diff after the release stops the execution (with ``reset_on_new_diff``)."""

    def concerns(self, view: RevisionView) -> bool:
        """Whether this gate waits on ``view``'s revision."""
        return self.revision in (view.phid, view.monogram)

    def to_json(self) -> dict[str, Any]:
        """As recorded in ``GateOpened``."""
        return {
            "execution": self.execution,
            "token": self.token,
            "state": self.state,
            "revision": self.revision,
            "reviewers": list(self.reviewers),
            "minApprovals": self.min_approvals,
            "resetOnNewDiff": self.reset_on_new_diff,
            "groups": list(self.groups),
            "abortOnNewDiff": self.abort_on_new_diff,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Gate:
        """Back from :meth:`to_json`."""
        return cls(
            data["execution"],
            data["token"],
            data["state"],
            data["revision"],
            tuple(data["reviewers"]),
            int(data["minApprovals"]),
            bool(data["resetOnNewDiff"]),
            tuple(data["groups"]),
            bool(data.get("abortOnNewDiff", False)),
        )


def revision_ref(value: Any) -> str:
    """``D12`` or ``PHID-DREV-...`` from what a state machine passes as ``Revision``.

    Takes ``"D12"``, ``"12"``, ``12``, a PHID, or an object with ``phid`` or ``id`` (the ``revision``
    of a trigger's input). Raises :class:`ValueError` saying what it got.
    """
    if isinstance(value, dict):
        value = value.get("phid") or value.get("id")
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return f"D{value}"
    if isinstance(value, str):
        if _REVISION_PHID.match(value):
            return value
        match = _MONOGRAM.match(value)
        if match:
            return f"D{int(match.group(1))}"
    raise ValueError(
        f"Revision must be D<number>, a PHID-DREV-... or an object with 'phid'/'id', got {value!r}"
    )


def gate_of(
    context: TaskContext, *, reset_default: bool, groups: Iterable[str], abort_default: bool = False
) -> Gate:
    """The gate a task's Parameters describe; :class:`TaskError` ``Phabricator.InvalidParameters``."""
    params = context.task.parameters
    if not isinstance(params, dict):
        raise TaskError("Phabricator.InvalidParameters", "Parameters must be an object with 'Revision'")
    unknown = set(params) - {"Revision", "Reviewers", "MinApprovals", "ResetOnNewDiff", "AbortOnNewDiff"}
    if unknown:
        raise TaskError("Phabricator.InvalidParameters", f"unknown parameter {sorted(unknown)[0]!r}")
    try:
        revision = revision_ref(params.get("Revision"))
    except ValueError as exc:
        raise TaskError("Phabricator.InvalidParameters", str(exc)) from None
    reviewers = params.get("Reviewers", [])
    if not isinstance(reviewers, list) or not all(isinstance(r, str) and r for r in reviewers):
        raise TaskError(
            "Phabricator.InvalidParameters", "Reviewers must be an array of usernames or #projects"
        )
    minimum = params.get("MinApprovals", 1)
    if isinstance(minimum, bool) or not isinstance(minimum, int) or minimum < 1:
        raise TaskError("Phabricator.InvalidParameters", "MinApprovals must be an integer >= 1")
    reset = params.get("ResetOnNewDiff", reset_default)
    if not isinstance(reset, bool):
        raise TaskError("Phabricator.InvalidParameters", "ResetOnNewDiff must be true or false")
    abort = params.get("AbortOnNewDiff", abort_default)
    if not isinstance(abort, bool):
        raise TaskError("Phabricator.InvalidParameters", "AbortOnNewDiff must be true or false")
    if abort and not reset:
        raise TaskError(
            "Phabricator.InvalidParameters",
            "AbortOnNewDiff needs ResetOnNewDiff (a new diff resets the gate)",
        )
    return Gate(
        context.execution,
        context.task.id,
        context.task.state_name,
        revision,
        tuple(r.removeprefix("@") for r in reviewers),
        minimum,
        reset,
        tuple(groups),
        abort,
    )


# ---------------------------------------------------------------------------------- the index
SNAPSHOT_EVERY = 64
"""Events of the index stream between two snapshots of its fold: the most a check reads past one."""


@dataclass(frozen=True)
class Released:
    """A released gate watched while its execution runs: ``diff`` is the one ``approver`` approved."""

    gate: Gate
    diff: str | None
    approver: str


@dataclass(frozen=True)
class Index:
    """The gates open as of ``version`` of the index stream."""

    version: int
    waiting: list[Gate]
    released: list[Released]
    state: dict[str, Any]
    """The fold itself (what a snapshot saves): ``{"gates": {key: {"gate": ..., "released": ...}}}``."""
    read: int
    """How many events past the snapshot were read to build it."""


def _key(execution: str, token: str) -> str:
    return f"{execution}|{token}"


def _fold(state: dict[str, Any], kind: str, data: dict[str, Any]) -> None:
    gates = state.setdefault("gates", {})
    key = _key(str(data.get("execution")), str(data.get("token")))
    if kind == "GateOpened":
        gates.setdefault(key, {"gate": dict(data), "released": None})
    elif kind == "GateReleased" and key in gates:
        gates[key]["released"] = {"diff": data.get("diff"), "approver": data.get("approver")}
    elif kind == "GateClosed":
        gates.pop(key, None)


def read_index(store: EventStore) -> Index:
    """The open gates: the latest snapshot of the index and the events after it."""
    snapshot = store.load_snapshot(GATES_STREAM)
    state: dict[str, Any] = {"gates": {}}
    version = 0
    if snapshot is not None:
        state, version = {"gates": dict(snapshot.state.get("gates") or {})}, snapshot.version
    records = store.read_stream(GATES_STREAM, from_version=version + 1)
    for record in records:
        _fold(state, record.type, dict(record.data))
        version = record.version
    waiting: list[Gate] = []
    released: list[Released] = []
    for entry in state["gates"].values():
        gate = Gate.from_json(entry["gate"])
        if entry.get("released") is None:
            waiting.append(gate)
        else:
            released.append(Released(gate, entry["released"].get("diff"), str(entry["released"]["approver"])))
    return Index(version, waiting, released, state, len(records))


def open_gates(store: EventStore) -> list[Gate]:
    """The gates waiting for their approval, oldest first."""
    return read_index(store).waiting


def open_gate(store: EventStore, gate: Gate, *, reconcile_seconds: float) -> None:
    """Write ``gate`` into the index with a check of its revision now and the next reconcile round."""
    work = [
        work_item(GATES_STREAM, CHECK, {"base": f"{CHECK}|{gate.execution}|{gate.token}", **gate.to_json()}),
        reconcile_item(next_bucket(reconcile_seconds), reconcile_seconds),
    ]
    _append(
        store, NewEvent(event_id(gate.execution, gate.token, "opened"), "GateOpened", gate.to_json()), work
    )


def release_gate(store: EventStore, gate: Gate, diff: str | None, approver: str) -> None:
    """Keep the released ``gate`` watched for a new diff while its execution runs (``GateReleased``)."""
    data = {"execution": gate.execution, "token": gate.token, "diff": diff, "approver": approver}
    _append(store, NewEvent(event_id(gate.execution, gate.token, "released"), "GateReleased", data), [])


def close_gate(store: EventStore, gate: Gate, outcome: str) -> None:
    """Take ``gate`` out of the index (``GateClosed``) with how it ended."""
    event = NewEvent(
        event_id(gate.execution, gate.token, "closed"),
        "GateClosed",
        {"execution": gate.execution, "token": gate.token, "outcome": outcome},
    )
    _append(store, event, [])


def next_bucket(seconds: float) -> int:
    """The reconcile round at least ``seconds`` from now: rounds fall on multiples of ``seconds``, so
    every process asking at about the same time names the same one."""
    return int((datetime.now(UTC).timestamp() + seconds) // seconds)


def reconcile_item(bucket: int, seconds: float) -> WorkItem:
    """The reconcile round due at ``bucket * seconds`` (one per bucket, whoever enqueues it)."""
    return WorkItem(
        id=f"{RECONCILE}|{bucket}",
        queue=QUEUE,
        stream_id=RECONCILE_STREAM,
        kind=RECONCILE,
        payload={"bucket": bucket},
        run_at=datetime.fromtimestamp(bucket * seconds, UTC),
    )


def _append(store: EventStore, event: NewEvent, work: list[WorkItem]) -> None:
    """Append one index event (with its work), once: its id is deterministic, so an event stored
    already (identically, or as another outcome of the same close) is left as it is."""
    for _ in range(20):
        index = read_index(store)
        snapshot = None
        if index.read + 1 >= SNAPSHOT_EVERY:  # the events a check would read past the snapshot
            state = {"gates": dict(index.state["gates"])}
            _fold(state, event.type, dict(event.data))
            snapshot = Snapshot(GATES_STREAM, index.version + 1, state)
        try:
            store.append(GATES_STREAM, index.version, [event], enqueue=work, snapshot=snapshot)
        except ConcurrencyError:
            continue
        except DuplicateEventId:
            return
        return
    raise UsageError(f"{GATES_STREAM}: gave up after 20 concurrent appends")


# ---------------------------------------------------------------------------------- deciding
@dataclass(frozen=True)
class Decision:
    """What the revision's current state means for one gate."""

    outcome: str
    """``release``, ``reject`` or ``wait``."""
    error: str = ""
    cause: str = ""
    approval: dict[str, Any] = field(default_factory=dict)
    rejection: dict[str, Any] = field(default_factory=dict)
    not_authorized: tuple[dict[str, Any], ...] = ()


def decide(gate: Gate, view: RevisionView, members: Callable[[str], set[str]]) -> Decision:
    """Release, reject or keep waiting; ``members(project)`` gives a project's member user PHIDs."""
    if view.status == "abandoned":
        abandon = view.latest("abandon")
        actor = abandon.author if abandon else view.author
        rejection = {"revision": view.monogram, "by": actor, "transaction": abandon.phid if abandon else None}
        return Decision(
            "reject", "Phabricator.Abandoned", f"{view.monogram} was abandoned by {actor}", {}, rejection
        )
    if view.status == "needs-revision":
        rejecters = sorted(r.username or r.phid for r in view.reviewers if r.status == "rejected")
        latest = view.latest("request-changes") or view.latest("reject")
        by = rejecters or ([latest.author] if latest else [])
        rejection = {
            "revision": view.monogram,
            "by": ", ".join(by),
            "transaction": latest.phid if latest else None,
        }
        return Decision(
            "reject",
            "Phabricator.Rejected",
            f"changes requested on {view.monogram} by {', '.join(by)}",
            {},
            rejection,
        )
    eligible = {"accepted"} if gate.reset_on_new_diff else {"accepted", "accepted-older"}
    counted: list[dict[str, Any]] = []
    refused: list[dict[str, Any]] = []
    for reviewer in view.reviewers:
        if reviewer.status not in eligible or reviewer.username is None:
            continue
        if gate.reviewers and not _named(reviewer.username, reviewer.phid, gate.reviewers, members):
            continue
        accept = view.latest("accept", reviewer.phid)
        entry = {
            "username": reviewer.username,
            "acceptedAt": accept.at if accept else None,
            "transaction": accept.phid if accept else None,
        }
        outside = [group for group in gate.groups if reviewer.phid not in members(group)]
        if outside:
            refused.append({**entry, "group": outside[0]})
        else:
            counted.append(entry)
    if len(counted) < gate.min_approvals:
        return Decision("wait", not_authorized=tuple(refused))
    counted.sort(key=lambda e: (e["acceptedAt"] or 0, e["username"]))
    approver = counted[-1]
    approval = {
        "revision": view.monogram,
        "revisionPHID": view.phid,
        "diff": view.diff,
        "status": view.status,
        "title": view.title,
        "uri": view.uri,
        "approver": approver["username"],
        "acceptedAt": approver["acceptedAt"],
        "approvers": counted,
    }
    return Decision("release", approval=approval, not_authorized=tuple(refused))


def _named(username: str, phid: str, named: tuple[str, ...], members: Callable[[str], set[str]]) -> bool:
    for entry in named:
        if entry.startswith(("#", "PHID-PROJ-")):
            if phid in members(entry):
                return True
        elif entry == username:
            return True
    return False


# ---------------------------------------------------------------------------------- answering
def answer(executions: Executions, gate: Gate, decision: Decision) -> str:
    """Record ``decision`` in the gate's execution and answer its task when it is final.

    Returns ``released``, ``rejected``, ``waiting`` or ``gone`` (the task no longer waits: timed
    out, stopped, or answered by someone else).
    """
    loaded = executions.load(gate.execution)
    if loaded.status != "RUNNING" or gate.token not in loaded.machine.tasks:
        return "gone"
    seen = {
        (e.type, e.details.get("token"), e.details.get("transaction"), e.details.get("approver"))
        for e in loaded.history
        if e.type in ("ApprovalGranted", "ApprovalRejected")
    }
    context = executions.task_context(loaded, gate.token)

    def record(kind: str, details: dict[str, Any]) -> None:
        key = (kind, gate.token, details.get("transaction"), details.get("approver"))
        if key not in seen:
            context.record(kind, details)
            seen.add(key)

    for refused in decision.not_authorized:
        record(
            "ApprovalRejected",
            {
                "token": gate.token,
                "error": "Phabricator.NotAuthorized",
                "approver": refused["username"],
                "transaction": refused["transaction"],
                "revision": gate.revision,
                "cause": f"{refused['username']} is not a member of {refused['group']}",
            },
        )
    try:
        if decision.outcome == "release":
            approval = decision.approval
            record(
                "ApprovalGranted",
                {
                    "token": gate.token,
                    "approver": approval["approver"],
                    "approvers": [a["username"] for a in approval["approvers"]],
                    "revision": approval["revision"],
                    "diff": approval["diff"],
                    "acceptedAt": approval["acceptedAt"],
                    "transaction": None,
                },
            )
            executions.send_task_success(gate.execution, gate.token, approval)
            log.info("phabricator.gate_released", execution=gate.execution, approver=approval["approver"])
            return "released"
        if decision.outcome == "reject":
            record(
                "ApprovalRejected",
                {"token": gate.token, "error": decision.error, "cause": decision.cause, **decision.rejection},
            )
            executions.send_task_failure(gate.execution, gate.token, decision.error, decision.cause)
            log.info("phabricator.gate_rejected", execution=gate.execution, error=decision.error)
            return "rejected"
    except UsageError:  # answered meanwhile (a concurrent delivery, a timeout)
        return "gone"
    return "waiting"


def released_earlier(executions: Executions, gate: Gate) -> Released | None:
    """The release of ``gate`` recorded in its execution (``ApprovalGranted``), if it was released.

    For a look that found the gate waiting in the index while another released it and had not yet
    written ``GateReleased``: the watch must not be lost to a ``gone``.
    """
    for event in reversed(executions.load(gate.execution).history):
        if event.type == "ApprovalGranted" and event.details.get("token") == gate.token:
            return Released(gate, event.details.get("diff"), str(event.details.get("approver")))
    return None


def revoke_if_changed(executions: Executions, watched: Released, view: RevisionView) -> str:
    """Look at a released gate again: ``watching``, ``ended`` (its execution did), or, when ``view``
    has another diff than the approved one, ``revoked`` (recorded) / ``aborted`` (also stopped)."""
    gate = watched.gate
    loaded = executions.load(gate.execution)
    if loaded.status != "RUNNING":
        return "ended"
    if view.diff is None or view.diff == watched.diff:
        return "watching"
    update = view.latest("update")
    by = update.author if update else view.author
    cause = (
        f"{view.monogram} got a new diff {view.diff} from {by} after {watched.approver} approved "
        f"{watched.diff}; the approval does not cover it"
    )
    details = {
        "token": gate.token,
        "error": DIFF_CHANGED,
        "cause": cause,
        "approver": watched.approver,
        "revision": view.monogram,
        "diff": watched.diff,
        "newDiff": view.diff,
        "by": by,
        "transaction": update.phid if update else None,
    }
    recorded = any(
        e.type == "ApprovalRejected"
        and e.details.get("token") == gate.token
        and e.details.get("error") == DIFF_CHANGED
        and e.details.get("newDiff") == view.diff
        for e in loaded.history
    )
    try:
        if not recorded:
            executions.record(gate.execution, "ApprovalRejected", details)
        if gate.abort_on_new_diff:
            executions.stop(gate.execution, DIFF_CHANGED, cause, by=f"phabricator:{by}")
    except UsageError:  # it ended meanwhile
        return "ended"
    log.info("phabricator.approval_revoked", execution=gate.execution, aborted=gate.abort_on_new_diff)
    return "aborted" if gate.abort_on_new_diff else "revoked"


def request(context: TaskContext, store: EventStore, gate: Gate, *, reconcile_seconds: float) -> None:
    """The executor's side: record ``ApprovalRequested`` (once) and open the gate."""
    if not any(
        e.type == "ApprovalRequested" and e.details.get("token") == gate.token for e in context.history
    ):
        context.record(
            "ApprovalRequested",
            {
                "token": gate.token,
                "revision": gate.revision,
                "reviewers": list(gate.reviewers),
                "minApprovals": gate.min_approvals,
                "groups": list(gate.groups),
            },
        )
    open_gate(store, gate, reconcile_seconds=reconcile_seconds)
