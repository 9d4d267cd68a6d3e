"""Who may approve what: a review policy becomes an execution policy.

A role-map entry of the aws integration can say that a role may only be used after an approval from
members of a Phabricator project (``require_approval_from = "#release-managers"``). An approval gate
therefore asks, for the state machine it belongs to, which groups the roles of its Task states
require (:func:`required_groups`), and an approval releases it only when the approver is a member of
each (looked up with ``project.search`` and its members attachment). The lookup is injected as a
:class:`RoleRuleLookup`; by default it is ``orchestrator.integrations.aws.role_rule_for`` when that
exists, else no rule applies.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from orchestrator.config import Config
from orchestrator.integrations.task_states import task_states


class ApprovalRule(Protocol):
    """What we need of a role-map rule."""

    @property
    def require_approval_from(self) -> str | None:
        """A project (``#slug`` or PHID) whose members' approval the role needs; None: anyone's."""


RoleRuleLookup = Callable[[Config, str, str, str, Any], ApprovalRule | None]
"""``(config, state_machine, state_name, resource, credentials) -> rule or None``."""


def default_lookup() -> RoleRuleLookup | None:
    """The aws integration's ``role_rule_for``, when it provides one."""
    try:
        aws = importlib.import_module("orchestrator.integrations.aws")
    except ImportError:  # pragma: no cover - the package is part of the project
        return None
    lookup = getattr(aws, "role_rule_for", None)
    return lookup if callable(lookup) else None


def required_groups(
    config: Config, state_machine: str, definition: Mapping[str, Any], lookup: RoleRuleLookup | None
) -> list[str]:
    """The projects whose members' approval the roles of ``definition``'s Task states require."""
    if lookup is None:
        return []
    groups: set[str] = set()
    for task in task_states(definition):
        if task.resource.startswith("phabricator:"):
            continue
        rule = lookup(config, state_machine, task.name, task.resource, task.state.get("Credentials"))
        if rule is not None and rule.require_approval_from:
            groups.add(rule.require_approval_from)
    return sorted(groups)
