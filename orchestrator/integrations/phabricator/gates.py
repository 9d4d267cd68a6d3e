"""Approval gates: a Task state with ``"Resource": "phabricator:approval"`` waits for a review.

::

    "Approve": {"Type": "Task", "Resource": "phabricator:approval",
                "Parameters": {"Revision.$": "$.revision", "Reviewers": ["carol", "#release-managers"],
                               "MinApprovals": 1, "ResetOnNewDiff": true, "AbortOnNewDiff": false},
                "TimeoutSeconds": 86400, "Next": "Deploy"}

A gate's life is spread over four modules, one concern each:

- this one: what a gate is (:class:`Gate`) and how a Task's Parameters describe it (:func:`gate_of`);
- :mod:`.gate_index`: the index stream ``phabricator-gates`` of the gates open now (opened, released
  and watched, closed), kept cheap to read by snapshots, and the reconcile rounds;
- :mod:`.gate_decisions`: what a revision's current state means for a gate (release, reject, wait),
  purely, with no store and no execution;
- :mod:`.gate_answers`: the execution's side: ``ApprovalRequested`` when the task starts, the
  decision recorded in the execution and its task answered, and an approval revoked when a new diff
  comes after the release.

The executor (:func:`.gate_answers.request`) records ``ApprovalRequested`` in the execution, writes
the gate into the index (``GateOpened``) together with a work item that checks the revision at once
and one that starts the reconcile loop, and returns ``PENDING``: no worker waits. Whenever the
revision is looked at (a webhook delivery, the first check, the reconcile loop), each open gate on it
is decided and answered; the index is then told (``GateReleased`` / ``GateClosed``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from orchestrator.executions.tasks import TaskContext, TaskError
from orchestrator.integrations.phabricator.reviews import RevisionView

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
