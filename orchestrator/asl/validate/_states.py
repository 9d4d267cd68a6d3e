"""One state's own fields: which are allowed (per type and query language), which exclude each
other, and the rules between them. Field values are checked by ``_fields``; nested state machines
(``Branches``, ``ItemProcessor``) and transitions between states by ``_machine``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from orchestrator.asl import choice
from orchestrator.asl.problems import Problem, child
from orchestrator.asl.validate import _values as v
from orchestrator.asl.validate._common import JSONATA, JSONPATH, MAX_SECONDS, Context, is_int, names, shown
from orchestrator.asl.validate._fields import FIELD_CHECKS, NOT_EXPRESSIONS, State


@dataclass(frozen=True)
class Spec:
    """The fields of one state type.

    ``both`` are allowed in either query language, ``jsonpath``/``jsonata`` only in that one.
    ``exactly_one``/``at_most_one`` are groups of mutually exclusive fields.
    """

    both: frozenset[str] = frozenset()
    jsonpath: frozenset[str] = frozenset()
    jsonata: frozenset[str] = frozenset()
    required: frozenset[str] = frozenset()
    transitions: bool = False  # Next xor End: true
    exactly_one: tuple[tuple[str, ...], ...] = ()
    at_most_one: tuple[tuple[str, ...], ...] = ()


def _fs(*items: str) -> frozenset[str]:
    return frozenset(items)


COMMON_FIELDS: Final = _fs("Type", "Comment", "QueryLanguage")
_IO: Final = _fs("InputPath", "OutputPath")

SPECS: Final[dict[str, Spec]] = {
    "Pass": Spec(
        both=_fs("Assign"),
        jsonpath=_IO | _fs("Parameters", "ResultPath", "Result"),
        jsonata=_fs("Output"),
        transitions=True,
    ),
    "Task": Spec(
        both=_fs("Resource", "Retry", "Catch", "TimeoutSeconds", "HeartbeatSeconds", "Credentials", "Assign"),
        jsonpath=_IO
        | _fs("Parameters", "ResultSelector", "ResultPath", "TimeoutSecondsPath", "HeartbeatSecondsPath"),
        jsonata=_fs("Arguments", "Output"),
        required=_fs("Resource"),
        transitions=True,
        at_most_one=(("TimeoutSeconds", "TimeoutSecondsPath"), ("HeartbeatSeconds", "HeartbeatSecondsPath")),
    ),
    "Choice": Spec(
        both=_fs("Choices", "Default", "Assign"),
        jsonpath=_IO,
        jsonata=_fs("Output"),
        required=_fs("Choices"),
    ),
    "Wait": Spec(
        both=_fs("Seconds", "Timestamp", "Assign"),
        jsonpath=_IO | _fs("SecondsPath", "TimestampPath"),
        jsonata=_fs("Output"),
        transitions=True,
        exactly_one=(("Seconds", "Timestamp", "SecondsPath", "TimestampPath"),),
    ),
    "Succeed": Spec(jsonpath=_IO, jsonata=_fs("Output")),
    "Fail": Spec(
        both=_fs("Error", "Cause"),
        jsonpath=_fs("ErrorPath", "CausePath"),
        at_most_one=(("Error", "ErrorPath"), ("Cause", "CausePath")),
    ),
    "Parallel": Spec(
        both=_fs("Branches", "Retry", "Catch", "Assign"),
        jsonpath=_IO | _fs("Parameters", "ResultSelector", "ResultPath"),
        jsonata=_fs("Arguments", "Output"),
        required=_fs("Branches"),
        transitions=True,
    ),
    "Map": Spec(
        both=_fs(
            "ItemProcessor",
            "Iterator",
            "ItemSelector",
            "ItemReader",
            "ItemBatcher",
            "ResultWriter",
            "MaxConcurrency",
            "ToleratedFailureCount",
            "ToleratedFailurePercentage",
            "Label",
            "Retry",
            "Catch",
            "Assign",
        ),
        jsonpath=_IO
        | _fs(
            "ItemsPath",
            "Parameters",
            "ResultSelector",
            "ResultPath",
            "MaxConcurrencyPath",
            "ToleratedFailureCountPath",
            "ToleratedFailurePercentagePath",
        ),
        jsonata=_fs("Items", "Output"),
        transitions=True,
        exactly_one=(("ItemProcessor", "Iterator"),),
        at_most_one=(
            ("Items", "ItemsPath"),
            ("ItemSelector", "Parameters"),
            ("MaxConcurrency", "MaxConcurrencyPath"),
            ("ToleratedFailureCount", "ToleratedFailureCountPath"),
            ("ToleratedFailurePercentage", "ToleratedFailurePercentagePath"),
        ),
    ),
}
STATE_TYPES: Final = tuple(SPECS)

# What to write instead of a field the state's query language does not have.
_JSONATA_INSTEAD: Final[dict[str, str]] = {
    "InputPath": "read $states.input in 'Arguments' or 'Output'",
    "OutputPath": "use 'Output'",
    "Parameters": "use 'Arguments'",
    "ResultSelector": "use 'Output' with $states.result",
    "ResultPath": "use 'Output' or 'Assign'",
    "Result": "use 'Output'",
    "ItemsPath": "use 'Items'",
    "SecondsPath": "use 'Seconds' with a JSONata expression",
    "TimestampPath": "use 'Timestamp' with a JSONata expression",
    "TimeoutSecondsPath": "use 'TimeoutSeconds' with a JSONata expression",
    "HeartbeatSecondsPath": "use 'HeartbeatSeconds' with a JSONata expression",
    "ErrorPath": "use 'Error' with a JSONata expression",
    "CausePath": "use 'Cause' with a JSONata expression",
    "MaxConcurrencyPath": "use 'MaxConcurrency' with a JSONata expression",
    "ToleratedFailureCountPath": "use 'ToleratedFailureCount' with a JSONata expression",
    "ToleratedFailurePercentagePath": "use 'ToleratedFailurePercentage' with a JSONata expression",
}


def check_state(ctx: Context, body: Mapping[str, Any], ptr: str, type_: str, language: str) -> None:
    """Check one state of a known type whose effective query language is ``language``."""
    state = State(body, ptr, type_, language)
    spec = SPECS[type_]
    _check_field_names(ctx, state, spec)
    _check_exclusive(ctx, state, spec)
    if spec.transitions:
        _check_transition(ctx, state)
    for key, value in body.items():
        checker = FIELD_CHECKS.get(key)
        if checker is not None and _allowed(spec, key, language):
            checker(ctx, value, state.at(key), state)
    type_check = _TYPE_CHECKS.get(type_)
    if type_check is not None:
        type_check(ctx, state)
    if language == JSONATA:
        for key, value in body.items():
            if key not in NOT_EXPRESSIONS:
                v.check_jsonata_strings(ctx, value, state.at(key))


# --------------------------------------------------------------------------------------------------
# Field names


def _allowed(spec: Spec, key: str, language: str) -> bool:
    if key in COMMON_FIELDS or key in spec.both:
        return True
    if spec.transitions and key in ("Next", "End"):
        return True
    return key in (spec.jsonpath if language == JSONPATH else spec.jsonata)


def _check_field_names(ctx: Context, state: State, spec: Spec) -> None:
    for key in state.body:
        if _allowed(spec, key, state.language):
            continue
        where = state.at(key)
        if key in spec.jsonpath:
            hint = (
                "use 'ItemSelector'"
                if (state.type, key) == ("Map", "Parameters")
                else _JSONATA_INSTEAD.get(key, "")
            )
            ctx.add(
                where,
                f"The field '{key}' is not supported in JSONata states" + (f"; {hint}" if hint else ""),
            )
        elif key in spec.jsonata:
            ctx.add(
                where,
                f'The field \'{key}\' is only supported in JSONata states; set "QueryLanguage": "JSONata" '
                "on the state or the state machine",
            )
        elif key in ("Next", "End"):
            why = (
                "is a terminal state"
                if state.type in ("Succeed", "Fail")
                else "names its targets in 'Choices' and 'Default'"
            )
            ctx.add(
                where,
                f"The field '{key}' is not supported in a {state.type} state: a {state.type} state {why}",
            )
        else:
            allowed = (
                COMMON_FIELDS | spec.both | (spec.jsonpath if state.language == JSONPATH else spec.jsonata)
            )
            if spec.transitions:
                allowed |= {"Next", "End"}
            ctx.add(
                where,
                f"The field '{key}' is not supported in a {state.type} state "
                f"({state.language}); allowed fields: {names(allowed)}",
            )
    for key in sorted(spec.required):
        if key not in state.body:
            ctx.add(state.ptr, f"The field '{key}' is required in a {state.type} state but was missing")


def _check_exclusive(ctx: Context, state: State, spec: Spec) -> None:
    usable = spec.both | (spec.jsonpath if state.language == JSONPATH else spec.jsonata)
    for group in spec.exactly_one:
        present = [key for key in group if key in state.body]
        if not present:
            options = [key for key in group if key in usable]
            ctx.add(state.ptr, f"A {state.type} state must have exactly one of: {', '.join(options)}")
        elif len(present) > 1:
            ctx.add(state.ptr, f"The fields {', '.join(present)} are mutually exclusive: give exactly one")
    for group in spec.at_most_one:
        present = [key for key in group if key in state.body]
        if len(present) > 1:
            ctx.add(state.ptr, f"The fields {', '.join(present)} are mutually exclusive: give at most one")


def _check_transition(ctx: Context, state: State) -> None:
    body = state.body
    if "Next" in body and "End" in body:
        ctx.add(
            state.ptr, "The fields 'Next' and 'End' are mutually exclusive: a state either continues or ends"
        )
    elif "Next" not in body and body.get("End") is not True:
        ctx.add(state.ptr, f"A {state.type} state must have either 'Next' or \"End\": true")


# --------------------------------------------------------------------------------------------------
# Rules between fields, per state type


def _task(ctx: Context, state: State) -> None:
    body = state.body
    heartbeat = body.get("HeartbeatSeconds")
    if not is_int(heartbeat):
        return
    # Without a timeout the default (MAX_SECONDS) applies; a dynamic timeout is unknown here.
    timeout = body.get("TimeoutSeconds", MAX_SECONDS)
    if is_int(timeout) and "TimeoutSecondsPath" not in body and heartbeat >= timeout:
        ctx.add(
            state.at("HeartbeatSeconds"),
            f"'HeartbeatSeconds' ({shown(heartbeat)}) must be smaller than "
            f"'TimeoutSeconds' ({shown(timeout)})",
        )


def _choice(ctx: Context, state: State) -> None:
    rules = state.body.get("Choices")
    if not isinstance(rules, list):
        return
    for i, rule in enumerate(rules):
        where = state.at("Choices", i)
        if isinstance(rule, Mapping):
            if state.language == JSONATA and "Condition" not in rule:
                ctx.add(
                    where,
                    "A Choice rule in a JSONata state must use 'Condition' (a JSONata expression); "
                    "'Variable' and comparison operators are JSONPath only",
                )
                continue
            if state.language == JSONPATH and "Condition" in rule:
                ctx.add(
                    child(where, "Condition"),
                    "'Condition' is only supported in JSONata states; use 'Variable' with a comparison "
                    'operator, or set "QueryLanguage": "JSONata"',
                )
                continue
        ctx.problems.extend(_rule_problems(rule, where))
        if isinstance(rule, Mapping) and isinstance(rule.get("Assign"), Mapping):
            v.check_assign(ctx, rule["Assign"], child(where, "Assign"), state.language)


def _rule_problems(rule: Any, ptr: str) -> list[Problem]:
    try:
        return choice.check_rule(rule, ptr, top_level=True)
    except Exception:  # owned by the Choice module: a crash there is not the definition's fault
        return []


_TYPE_CHECKS: Final[dict[str, Callable[[Context, State], None]]] = {"Task": _task, "Choice": _choice}
