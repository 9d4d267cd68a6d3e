"""The roles a definition asks for, checked at ``validate`` and publish against ``[[aws.allow]]``.

Every Task state is visited, inside Parallel branches and Map processors too. A literal
``Credentials.RoleArn`` must be an IAM role ARN the state machine may use; a state without
``Credentials`` must not be given a disallowed role by the role map either. A role computed at run
time (``RoleArn.$``, or a JSONata ``{% %}`` expression) cannot be known here and is checked when the
task runs (see :mod:`orchestrator.integrations.aws.task_roles`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.integrations.aws.roles import ROLE_ARN, RoleMap
from orchestrator.integrations.task_states import task_states


def role_problems(role_map: RoleMap, name: str, definition: Any) -> list[str]:
    """``/pointer: message`` for every role the state machine ``name`` may not use."""
    problems: list[str] = []
    for task in task_states(definition):
        credentials = task.state.get("Credentials")
        if isinstance(credentials, Mapping):
            role = credentials.get("RoleArn")
            if not isinstance(role, str) or (task.jsonata and role.strip().startswith("{%")):
                continue  # computed when the task runs, and checked then
            where = f"{task.pointer}/Credentials/RoleArn"
            if not ROLE_ARN.match(role):
                problems.append(f"{where}: {role!r} is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)")
                continue
            refusal = role_map.refusal(name, role)
            if refusal is not None:
                problems.append(f"{where}: {refusal}")
            continue
        if task.resource.startswith("phabricator:"):
            continue  # an approval gate runs nothing, under no role
        rule = role_map.mapped(name, task.name, task.resource)
        if rule is not None:
            refusal = role_map.refusal(name, rule.role_arn)
            if refusal is not None:
                problems.append(
                    f"{task.pointer}: the role map ({rule.origin}) gives this state a role, but {refusal}"
                )
    return problems
