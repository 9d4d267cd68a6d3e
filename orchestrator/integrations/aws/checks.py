"""The roles a definition asks for, checked at ``validate`` and publish against ``[[aws.allow]]``.

Every Task state is visited, inside Parallel branches and Map processors too. A literal
``Credentials.RoleArn`` must be an IAM role ARN the state machine may use; a state without
``Credentials`` must not be given a disallowed role by the role map either. A role computed at run
time (``RoleArn.$``, or a JSONata ``{% %}`` expression) cannot be known here and is checked when the
task runs (see :mod:`orchestrator.integrations.aws.task_roles`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from orchestrator.integrations.aws.roles import ROLE_ARN, RoleMap


def role_problems(role_map: RoleMap, name: str, definition: Any) -> list[str]:
    """``/pointer: message`` for every role the state machine ``name`` may not use."""
    problems: list[str] = []
    for pointer, state_name, state, jsonata in _task_states(definition, "", False):
        credentials = state.get("Credentials")
        if isinstance(credentials, Mapping):
            role = credentials.get("RoleArn")
            if not isinstance(role, str) or (jsonata and role.strip().startswith("{%")):
                continue  # computed when the task runs, and checked then
            where = f"{pointer}/Credentials/RoleArn"
            if not ROLE_ARN.match(role):
                problems.append(f"{where}: {role!r} is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)")
                continue
            refusal = role_map.refusal(name, role)
            if refusal is not None:
                problems.append(f"{where}: {refusal}")
            continue
        resource = str(state.get("Resource", ""))
        if resource.startswith("phabricator:"):
            continue  # an approval gate runs nothing, under no role
        rule = role_map.mapped(name, state_name, resource)
        if rule is not None:
            refusal = role_map.refusal(name, rule.role_arn)
            if refusal is not None:
                problems.append(
                    f"{pointer}: the role map ({rule.origin}) gives this state a role, but {refusal}"
                )
    return problems


def _task_states(
    machine: Any, prefix: str, jsonata: bool
) -> Iterator[tuple[str, str, Mapping[str, Any], bool]]:
    """``(pointer, name, state, uses JSONata)`` of every Task state of ``machine`` and its children."""
    if not isinstance(machine, Mapping):
        return
    jsonata = _language(machine, jsonata)
    states = machine.get("States")
    if not isinstance(states, Mapping):
        return
    for state_name, state in states.items():
        if not isinstance(state, Mapping):
            continue
        pointer = f"{prefix}/States/{_escape(str(state_name))}"
        state_jsonata = _language(state, jsonata)
        kind = state.get("Type")
        if kind == "Task":
            yield pointer, str(state_name), state, state_jsonata
        elif kind == "Parallel" and isinstance(state.get("Branches"), list):
            for index, branch in enumerate(state["Branches"]):
                yield from _task_states(branch, f"{pointer}/Branches/{index}", state_jsonata)
        elif kind == "Map":
            for key in ("ItemProcessor", "Iterator"):
                if key in state:
                    yield from _task_states(state[key], f"{pointer}/{key}", state_jsonata)


def _language(node: Mapping[str, Any], inherited: bool) -> bool:
    language = node.get("QueryLanguage")
    return inherited if language is None else language == "JSONata"


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")
