"""The execution's side of an approval gate: the request, the answer, and the revocation.

:func:`request` (the executor) records ``ApprovalRequested`` once and opens the gate in the index.
:func:`answer` records a :class:`.Decision` in the gate's execution and answers its task; each
recorded event is looked for first, so answering twice is harmless. A gate whose task no longer waits
(``TimeoutSeconds`` fired ``States.Timeout``, the execution was stopped) is ``gone``: the index closes
it the next time its revision is looked at, and a late accept changes nothing.

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
"""

from __future__ import annotations

from typing import Any

import structlog

from orchestrator.errors import UsageError
from orchestrator.executions.service import Executions
from orchestrator.executions.tasks import TaskContext
from orchestrator.integrations.phabricator.gate_decisions import Decision
from orchestrator.integrations.phabricator.gate_index import Released, open_gate
from orchestrator.integrations.phabricator.gates import Gate
from orchestrator.integrations.phabricator.reviews import RevisionView
from orchestrator.store import EventStore

log = structlog.get_logger(__name__)

DIFF_CHANGED = "Phabricator.DiffChanged"


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
