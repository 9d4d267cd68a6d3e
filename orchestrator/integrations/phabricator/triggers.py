"""Trigger rules: a revision accepted in repository X (tagged with project Y) starts NAME:ALIAS.

A delivery whose transactions include the status change into ``accepted`` (what a Herald rule
"status is accepted, only if it did not match last time" fires on) starts, for every matching
``[[phabricator.triggers]]`` rule, one execution per accepted diff: its name is
``D<id>-<diff PHID suffix>``, so a repeated or late delivery finds it there. A late delivery about a
revision that is no longer accepted (a new diff came since) starts nothing. The input describes the
revision; the approver is the trigger's identity (``identity_of``) and appears in ``lineage``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog

from orchestrator.errors import UsageError
from orchestrator.executions.service import ExecutionConflict, Executions
from orchestrator.integrations.phabricator.reviews import ACCEPTED_STATUSES, RevisionView
from orchestrator.integrations.phabricator.settings import TriggerRule

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Started:
    """An execution a rule started (or had started before: ``new`` False)."""

    execution: str
    new: bool
    rule: str


def execution_name(view: RevisionView) -> str:
    """One execution per accepted diff: ``D12-<diff PHID suffix>``."""
    diff = (view.diff or "nodiff").removeprefix("PHID-DIFF-")
    return f"{view.monogram}-{diff}"[:80]


def fire(
    executions: Executions, rules: tuple[TriggerRule, ...], view: RevisionView, delivered: tuple[str, ...]
) -> tuple[list[Started], list[str]]:
    """Start what ``rules`` say for the accept among the ``delivered`` transactions of ``view``.

    Returns what was started and the problems (a rule naming an unknown state machine...).
    """
    transition = next(
        (
            t
            for t in view.transactions
            if t.phid in delivered and t.type == "status" and t.fields.get("new") == "accepted"
        ),
        None,
    )
    if transition is None or view.status not in ACCEPTED_STATUSES:
        return [], []
    accept = next(
        (t for t in view.transactions if t.type == "accept" and t.author_phid == transition.author_phid), None
    )
    approver = transition.author
    input_value = {"revision": view.describe(approver)}
    trigger: dict[str, Any] = {
        "source": "phabricator",
        "revision": view.monogram,
        "revisionPHID": view.phid,
        "diff": view.diff,
        "approver": approver,
        "acceptedAt": (accept or transition).at,
        "transaction": (accept or transition).phid,
    }
    started: list[Started] = []
    problems: list[str] = []
    for rule in rules:
        if not rule.matches(view.repository, list(view.projects)):
            continue
        try:
            loaded, new = executions.start(
                rule.start,
                input_value,
                name=execution_name(view),
                started_by=f"phabricator:{approver}",
                trigger=trigger,
            )
        except ExecutionConflict:
            log.info("phabricator.trigger_already_started", revision=view.monogram, rule=rule.start)
            continue
        except UsageError as exc:
            log.warning("phabricator.trigger_failed", revision=view.monogram, rule=rule.start, error=str(exc))
            problems.append(f"{rule.start}: {exc}")
            continue
        started.append(Started(loaded.id, new, rule.start))
        log.info("phabricator.triggered", revision=view.monogram, execution=loaded.id, new=new)
    return started, problems
