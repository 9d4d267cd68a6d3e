"""What a revision's current state means for one approval gate: release, reject or keep waiting.

:func:`decide` is pure (the revision as :class:`.RevisionView` shows it, the gate, and a function giving
a project's members): abandoned fails the task with ``Phabricator.Abandoned``; changes requested with
``Phabricator.Rejected``; enough accepts from the named reviewers (of the current diff only, when
``ResetOnNewDiff``), each from a member of every project the state machine's roles require, release
it, the approval record being the task's result. An accept from anyone else is listed in
:attr:`Decision.not_authorized` (recorded by :func:`.gate_answers.answer` as ``ApprovalRejected``
with ``Phabricator.NotAuthorized``) and does not count.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.integrations.phabricator.gates import Gate
from orchestrator.integrations.phabricator.reviews import RevisionView


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
