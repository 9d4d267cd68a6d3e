"""A state machine as a whole: its top-level fields, its States, the transitions between them, and
the machines nested in Parallel branches and Map item processors (validated recursively, their
pointers continuing below the state that holds them).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator, Mapping
from enum import Enum
from typing import Any, Final

from orchestrator.asl.problems import child
from orchestrator.asl.validate import _values as v
from orchestrator.asl.validate._common import (
    JSONATA,
    JSONPATH,
    MAX_SECONDS,
    QUERY_LANGUAGES,
    Context,
    names,
    shown,
)
from orchestrator.asl.validate._states import SPECS, STATE_TYPES, check_state

MAX_STATE_NAME_LENGTH: Final = 80
_CONTROL: Final = re.compile("[\x00-\x1f\x7f-\x9f]")  # refused in every Step Functions name
_SHOWN_NAMES: Final = 10  # how many state names a "not a state here" message lists


class Kind(Enum):
    """Where a state machine object appears, which decides its allowed fields."""

    TOP = "state machine"
    BRANCH = "Parallel branch"
    PROCESSOR = "Map item processor"


_FIELDS: Final[dict[Kind, frozenset[str]]] = {
    Kind.TOP: frozenset({"Comment", "StartAt", "States", "Version", "TimeoutSeconds", "QueryLanguage"}),
    Kind.BRANCH: frozenset({"Comment", "StartAt", "States"}),
    Kind.PROCESSOR: frozenset({"Comment", "StartAt", "States", "ProcessorConfig"}),
}


def check_definition(ctx: Context, definition: Any) -> None:
    """Check a whole parsed definition."""
    if not isinstance(definition, Mapping):
        ctx.add("", f"Definition must be a JSON object, got {shown(definition)}")
        return
    if "QueryLanguage" in definition:
        language = definition["QueryLanguage"]
        v.check_enum(ctx, language, child("", "QueryLanguage"), "QueryLanguage", QUERY_LANGUAGES)
        if language in QUERY_LANGUAGES:
            ctx.top_language = language
    check_machine(ctx, definition, "", Kind.TOP)


def check_machine(ctx: Context, machine: Any, ptr: str, kind: Kind) -> None:
    """Check one state machine object (the definition, a branch or an item processor)."""
    if not isinstance(machine, Mapping):
        ctx.add(ptr, f"A {kind.value} must be an object with StartAt and States, got {shown(machine)}")
        return
    allowed = _FIELDS[kind]
    for key in machine:
        if key not in allowed:
            ctx.add(
                child(ptr, key),
                f"The field '{key}' is not supported in a {kind.value} (allowed: {names(allowed)})",
            )
    missing = [key for key in ("States", "StartAt") if key not in machine]
    if missing:
        ctx.add(ptr, f"These fields are required in a {kind.value}: {', '.join(missing)}")
    if "Comment" in machine:
        v.check_string(ctx, machine["Comment"], child(ptr, "Comment"), "Comment", allow_empty=True)
    if "Version" in machine and kind is Kind.TOP:
        v.check_enum(ctx, machine["Version"], child(ptr, "Version"), "Version", ("1.0",))
    if "TimeoutSeconds" in machine and kind is Kind.TOP:
        v.check_int(
            ctx,
            machine["TimeoutSeconds"],
            child(ptr, "TimeoutSeconds"),
            "TimeoutSeconds",
            low=0,
            high=MAX_SECONDS,
        )
    if "ProcessorConfig" in machine and kind is Kind.PROCESSOR:
        _check_processor_config(ctx, machine["ProcessorConfig"], child(ptr, "ProcessorConfig"))

    states = machine.get("States")
    if "States" in machine and not isinstance(states, Mapping):
        ctx.add(
            child(ptr, "States"),
            f"'States' must be an object mapping state names to states, got {shown(states)}",
        )
        states = None
    elif isinstance(states, Mapping) and not states:
        ctx.add(child(ptr, "States"), "'States' must contain at least one state")
    if isinstance(states, Mapping):
        for name, body in states.items():
            _check_named_state(ctx, name, body, child(ptr, "States", name))
    _check_transitions(ctx, machine, states if isinstance(states, Mapping) else None, ptr)


def _check_processor_config(ctx: Context, config: Any, ptr: str) -> None:
    if not isinstance(config, Mapping):
        ctx.add(ptr, f"'ProcessorConfig' must be an object, got {shown(config)}")
        return
    for key in config:
        if key not in ("Mode", "ExecutionType"):
            ctx.add(
                child(ptr, key),
                f"The field '{key}' is not supported in 'ProcessorConfig' (allowed: ExecutionType, Mode)",
            )
    if "Mode" in config:
        v.check_enum(ctx, config["Mode"], child(ptr, "Mode"), "Mode", ("INLINE", "DISTRIBUTED"))
    if "ExecutionType" in config:
        v.check_enum(
            ctx,
            config["ExecutionType"],
            child(ptr, "ExecutionType"),
            "ExecutionType",
            ("STANDARD", "EXPRESS"),
        )


def _check_named_state(ctx: Context, name: str, body: Any, ptr: str) -> None:
    if not name:
        ctx.add(ptr, "A state name must not be empty")
    elif _CONTROL.search(name):
        ctx.add(ptr, f"The state name {shown(name, 40)} contains control characters, which are not allowed")
    elif len(name) > MAX_STATE_NAME_LENGTH:
        ctx.add(
            ptr,
            f"The state name {shown(name, 40)} is {len(name)} characters long; "
            f"at most {MAX_STATE_NAME_LENGTH} are allowed",
        )
    first = ctx.state_names.setdefault(name, ptr)
    if first != ptr:
        ctx.add(
            ptr,
            f"Duplicate state name {shown(name)} (also at {first}): state names must be unique in the "
            "whole state machine, nested machines included",
        )
    if not isinstance(body, Mapping):
        ctx.add(ptr, f"A state must be an object, got {shown(body)}")
        return
    language = _state_language(ctx, body, ptr)
    if "Type" not in body:
        ctx.add(
            ptr, f"The field 'Type' is required in a state but was missing (one of: {', '.join(STATE_TYPES)})"
        )
        return
    type_ = body["Type"]
    if not isinstance(type_, str) or type_ not in SPECS:
        ctx.add(
            child(ptr, "Type"),
            f"{shown(type_)} is not a state type; expected one of: {', '.join(STATE_TYPES)}",
        )
        return
    check_state(ctx, body, ptr, type_, language)
    if type_ == "Parallel" and isinstance(body.get("Branches"), list):
        for i, branch in enumerate(body["Branches"]):
            check_machine(ctx, branch, child(ptr, "Branches", i), Kind.BRANCH)
    if type_ == "Map":
        for key in ("ItemProcessor", "Iterator"):
            if isinstance(body.get(key), Mapping):
                check_machine(ctx, body[key], child(ptr, key), Kind.PROCESSOR)


def _state_language(ctx: Context, body: Mapping[str, Any], ptr: str) -> str:
    """The state's query language: its own ``QueryLanguage``, else the state machine's.

    A state without one inherits the top-level language, nested machines included (as AWS does);
    a top-level JSONata machine cannot contain JSONPath states.
    """
    if "QueryLanguage" not in body:
        return ctx.top_language
    language = body["QueryLanguage"]
    where = child(ptr, "QueryLanguage")
    if language not in QUERY_LANGUAGES or not isinstance(language, str):
        v.check_enum(ctx, language, where, "QueryLanguage", QUERY_LANGUAGES)
        return ctx.top_language
    if ctx.top_language == JSONATA and language == JSONPATH:
        ctx.add(
            where,
            "'QueryLanguage' cannot be 'JSONPath' in a state machine whose QueryLanguage is 'JSONata' "
            "(only a JSONPath state machine can mix in JSONata states)",
        )
    return language


# --------------------------------------------------------------------------------------------------
# Transitions


def _targets(body: Mapping[str, Any], ptr: str) -> Iterator[tuple[str, Any]]:
    """(pointer, target) of every transition a state declares: Next, Default, rule and catcher Next."""
    for key in ("Next", "Default"):
        if key in body:
            yield child(ptr, key), body[key]
    for key in ("Choices", "Catch"):
        items = body.get(key)
        if isinstance(items, list):
            for i, item in enumerate(items):
                if isinstance(item, Mapping) and "Next" in item:
                    yield child(ptr, key, i, "Next"), item["Next"]


def _is_terminal(body: Any) -> bool:
    return isinstance(body, Mapping) and (body.get("Type") in ("Succeed", "Fail") or body.get("End") is True)


def _here(state_names: Mapping[str, Any]) -> str:
    listed = list(state_names)[:_SHOWN_NAMES]
    more = ", ..." if len(state_names) > _SHOWN_NAMES else ""
    return f" (states here: {', '.join(listed)}{more})"


def _check_transitions(
    ctx: Context, machine: Mapping[str, Any], states: Mapping[str, Any] | None, ptr: str
) -> None:
    """StartAt and every Next name states of this machine; all states are reachable; one ends."""
    start = machine.get("StartAt")
    if "StartAt" in machine:
        if not isinstance(start, str) or not start:
            ctx.add(child(ptr, "StartAt"), f"'StartAt' must be the name of a state, got {shown(start)}")
        elif states is not None and states and start not in states:
            ctx.add(
                child(ptr, "StartAt"),
                f"'StartAt' names {shown(start)}, which is not a state of this machine{_here(states)}",
            )
    if not states:
        return
    edges: dict[str, list[str]] = {}
    for name, body in states.items():
        edges[name] = []
        if not isinstance(body, Mapping):
            continue
        for where, target in _targets(body, child(ptr, "States", name)):
            if not isinstance(target, str) or not target:
                continue  # the field's own check reports a non-string
            if target in states:
                edges[name].append(target)
            else:
                ctx.add(where, f"{shown(target)} is not a state of this machine{_here(states)}")
    if isinstance(start, str) and start in states:
        reached = {start}
        queue = deque([start])
        while queue:
            for target in edges[queue.popleft()]:
                if target not in reached:
                    reached.add(target)
                    queue.append(target)
        for name in states:
            if name not in reached:
                ctx.add(
                    child(ptr, "States", name),
                    f"The state {shown(name)} is not reachable from StartAt {shown(start)}",
                )
    if not any(_is_terminal(body) for body in states.values()):
        ctx.add(
            child(ptr, "States"),
            'No terminal state: at least one state must be a Succeed or Fail state or have "End": true',
        )
