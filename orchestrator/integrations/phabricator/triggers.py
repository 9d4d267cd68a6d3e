"""Trigger rules: a revision accepted in repository X (tagged with project Y, touching paths Z)
starts NAME:ALIAS.

A delivery whose transactions include the status change into ``accepted`` (what a Herald rule
"status is accepted, only if it did not match last time" fires on) starts, for every matching
``[[phabricator.triggers]]`` rule, one execution per accepted diff: its name is
``D<id>-<diff PHID suffix>``, so a repeated or late delivery finds it there. A late delivery about a
revision that is no longer accepted (a new diff came since) starts nothing. The input describes the
revision; the approver is the trigger's identity (``identity_of``) and appears in ``lineage``.

A rule with ``paths`` also needs the accepted diff to touch a file they select: the diff's paths are
read through Conduit (``differential.changeset.search``) once per delivery, only when a rule that
matched on repository and project has ``paths``, and before anything starts, so Conduit failing
there retries the whole delivery without a half-fired set of rules. The paths that selected the rule
are in the execution's trigger (``lineage``), at most :data:`SHOWN_PATHS` of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from orchestrator.errors import UsageError
from orchestrator.executions.service import ExecutionConflict, Executions
from orchestrator.integrations.phabricator.reviews import ACCEPTED_STATUSES, RevisionView
from orchestrator.integrations.phabricator.settings import TriggerRule

log = structlog.get_logger(__name__)

SHOWN_PATHS = 20
ChangedPaths = Callable[[str], list[str]]
"""Diff PHID -> the paths it touches (:meth:`.Conduit.changed_paths`)."""


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
    executions: Executions,
    rules: tuple[TriggerRule, ...],
    view: RevisionView,
    delivered: tuple[str, ...],
    changed_paths: ChangedPaths,
) -> tuple[list[Started], list[str]]:
    """Start what ``rules`` say for the accept among the ``delivered`` transactions of ``view``.

    Returns what was started and the problems (a rule naming an unknown state machine...).
    ``changed_paths`` errors (Conduit down) propagate before anything starts.
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
    candidates = [rule for rule in rules if rule.matches(view.repository, list(view.projects))]
    changed: list[str] = []
    if view.diff and any(rule.paths for rule in candidates):
        changed = changed_paths(view.diff)
    started: list[Started] = []
    problems: list[str] = []
    for rule in candidates:
        rule_trigger = trigger
        if rule.paths:
            touched = rule.touched(changed)
            if not touched:
                log.info("phabricator.trigger_paths_untouched", revision=view.monogram, rule=rule.start)
                continue
            rule_trigger = {**trigger, "paths": touched[:SHOWN_PATHS]}
        try:
            loaded, new = executions.start(
                rule.start,
                input_value,
                name=execution_name(view),
                started_by=f"phabricator:{approver}",
                trigger=rule_trigger,
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
