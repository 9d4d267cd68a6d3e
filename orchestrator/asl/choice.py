"""Choice rules: evaluation (JSONPath flavour) and static shape checks (both flavours).

A JSONPath rule is a comparison (``{"Variable": "$.x", "NumericGreaterThan": 3}``), an ``Is*`` test,
or a combination (``And``/``Or`` over a non-empty list of rules, ``Not`` over one rule). A top-level
rule also names its ``Next`` state and may carry ``Assign`` and ``Comment``; nested rules have no
``Next``. A JSONata rule is ``{"Condition": "{% ... %}", "Next": ...}`` (plus ``Assign``/``Output``);
it is only shape-checked here, its evaluation belongs to the JSONata evaluator.

Semantics (from the recorded AWS answers and the AWS documentation unless marked *assumed*):

* a comparison whose variable holds a value of another type is simply false (``StringEquals`` on a
  number, ``NumericEquals`` on ``"1"`` or on ``true``: booleans are not numbers);
* ``Is*`` compare the type test with the operand: ``"IsNumeric": false`` holds for ``null``;
* ``IsPresent`` is the only operator that tolerates a missing ``Variable``; elsewhere a missing
  variable (or a missing ``...Path`` operand) fails the execution with ``States.Runtime``:
  ``Invalid path '$.x': The choice state's condition path references an invalid value.``;
* numbers compare by value (``1 == 1.0``); strings compare by UTF-16 code units, as Java does
  (*assumed*: AWS runs on the JVM); timestamps compare as instants (``+01:00`` offsets honoured)
  at nanosecond precision;
* ``StringMatches``: ``*`` matches any run of characters (newlines included), ``\\*`` is a literal
  ``*`` and ``\\\\`` a literal backslash; every other character stands for itself.

Evaluation is on the hot path (a Choice in a loop runs once per iteration): operators are found
through a dispatch dict, literal timestamp operands are parsed once (cached) and ``StringMatches``
patterns are compiled once (cached).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, Final

from orchestrator.asl.jsontypes import json_type
from orchestrator.asl.paths import PathNotFound, check_path
from orchestrator.asl.problems import Problem, child
from orchestrator.asl.timestamps import timestamp_key
from orchestrator.errors import RUNTIME, StatesError

__all__ = [
    "COMPARISON_OPERATORS",
    "JSONATA_RULE_FIELDS",
    "OPERATORS",
    "check_rule",
    "evaluate_rule",
    "invalid_path_cause",
    "string_matches",
]

Resolve = Callable[[str], Any]
_Evaluator = Callable[[Mapping[str, Any], str, Resolve], bool]

_NO: Final = object()  # "not of this operator's type"


def invalid_path_cause(path: str) -> str:
    """AWS's cause for a Choice rule whose ``Variable`` (or ``...Path`` operand) selects nothing."""
    return f"Invalid path '{path}': The choice state's condition path references an invalid value."


# --------------------------------------------------------------------------------------------------
# Type coercions: each returns a comparable key, or _NO when the value is not of the family's type.


def _as_string(value: Any) -> Any:
    return value if isinstance(value, str) else _NO


def _as_number(value: Any) -> Any:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else _NO


def _as_boolean(value: Any) -> Any:
    return value if isinstance(value, bool) else _NO


def _as_timestamp(value: Any) -> Any:
    key = timestamp_key(value) if isinstance(value, str) else None
    return _NO if key is None else key


def _str_cmp(a: str, b: str) -> int:
    """-1/0/1 ordering ``a`` and ``b`` as Java's ``String.compareTo`` does (by UTF-16 code unit).

    Python orders ``str`` by code point; the two orders differ only when a character above U+FFFF
    meets one in U+E000..U+FFFF. Big-endian UTF-16 bytes compare exactly as code units do.
    """
    if a.isascii() and b.isascii():
        return (a > b) - (a < b)
    x, y = a.encode("utf-16-be", "surrogatepass"), b.encode("utf-16-be", "surrogatepass")
    return (x > y) - (x < y)


def _str_lt(a: str, b: str) -> bool:
    return _str_cmp(a, b) < 0


def _str_gt(a: str, b: str) -> bool:
    return _str_cmp(a, b) > 0


def _str_le(a: str, b: str) -> bool:
    return _str_cmp(a, b) <= 0


def _str_ge(a: str, b: str) -> bool:
    return _str_cmp(a, b) >= 0


# --------------------------------------------------------------------------------------------------
# StringMatches


@lru_cache(maxsize=1024)
def _glob(pattern: str) -> tuple[str, ...]:
    """Split a StringMatches pattern at its unescaped ``*`` into literal segments (unescaped).

    A pattern without wildcards gives one segment; ``a*b*`` gives ``("a", "b", "")``.
    """
    segments: list[str] = []
    current: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n and pattern[i + 1] in "*\\":
            current.append(pattern[i + 1])
            i += 2
            continue
        if c == "*":
            segments.append("".join(current))
            current = []
        else:
            current.append(c)
        i += 1
    segments.append("".join(current))
    return tuple(segments)


def string_matches(value: str, pattern: str) -> bool:
    """True when ``value`` matches the StringMatches ``pattern`` (``*`` wildcards, ``\\`` escapes).

    Linear-time greedy matching (no regex, hence no catastrophic backtracking): the first segment
    must be a prefix, the last a suffix, and the middle ones occur in order in between.
    """
    segments = _glob(pattern)
    if len(segments) == 1:
        return value == segments[0]
    first, last = segments[0], segments[-1]
    end = len(value) - len(last)
    if end < len(first) or not value.startswith(first) or not value.endswith(last):
        return False
    pos = len(first)
    for segment in segments[1:-1]:
        found = value.find(segment, pos, end)
        if found < 0:
            return False
        pos = found + len(segment)
    return True


# --------------------------------------------------------------------------------------------------
# Operators


def _variable(rule: Mapping[str, Any], resolve: Resolve) -> Any:
    path = rule.get("Variable")
    if not isinstance(path, str):
        raise ValueError(f"Choice rule without a Variable: {dict(rule)!r}")
    try:
        return resolve(path)
    except PathNotFound:
        raise StatesError(RUNTIME, invalid_path_cause(path)) from None


def _operand_path(path: Any, resolve: Resolve) -> Any:
    if not isinstance(path, str):
        raise ValueError(f"Choice rule operand path must be a string, got {path!r}")
    try:
        return resolve(path)
    except PathNotFound:
        raise StatesError(RUNTIME, invalid_path_cause(path)) from None


def _comparison(coerce: Callable[[Any], Any], relation: Callable[[Any, Any], bool]) -> _Evaluator:
    def evaluate(rule: Mapping[str, Any], op: str, resolve: Resolve) -> bool:
        left = coerce(_variable(rule, resolve))
        if left is _NO:
            return False
        right = coerce(rule[op])
        return right is not _NO and relation(left, right)

    return evaluate


def _path_comparison(coerce: Callable[[Any], Any], relation: Callable[[Any, Any], bool]) -> _Evaluator:
    def evaluate(rule: Mapping[str, Any], op: str, resolve: Resolve) -> bool:
        value = _variable(rule, resolve)
        other = _operand_path(rule[op], resolve)
        left = coerce(value)
        if left is _NO:
            return False
        right = coerce(other)
        return right is not _NO and relation(left, right)

    return evaluate


def _type_test(test: Callable[[Any], bool]) -> _Evaluator:
    def evaluate(rule: Mapping[str, Any], op: str, resolve: Resolve) -> bool:
        return test(_variable(rule, resolve)) is rule[op]

    return evaluate


def _is_present(rule: Mapping[str, Any], op: str, resolve: Resolve) -> bool:
    path = rule.get("Variable")
    if not isinstance(path, str):
        raise ValueError(f"Choice rule without a Variable: {dict(rule)!r}")
    try:
        resolve(path)
    except PathNotFound:
        present = False
    else:
        present = True
    return present is rule[op]


def _and(rule: Mapping[str, Any], op: str, resolve: Resolve) -> bool:
    return all(evaluate_rule(r, resolve) for r in rule[op])


def _or(rule: Mapping[str, Any], op: str, resolve: Resolve) -> bool:
    return any(evaluate_rule(r, resolve) for r in rule[op])


def _not(rule: Mapping[str, Any], op: str, resolve: Resolve) -> bool:
    return not evaluate_rule(rule[op], resolve)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


_RELATIONS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "Equals": operator.eq,
    "LessThan": operator.lt,
    "GreaterThan": operator.gt,
    "LessThanEquals": operator.le,
    "GreaterThanEquals": operator.ge,
}
_STRING_RELATIONS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "Equals": operator.eq,
    "LessThan": _str_lt,
    "GreaterThan": _str_gt,
    "LessThanEquals": _str_le,
    "GreaterThanEquals": _str_ge,
}

# operator name -> the type its operand must have ("string", "number", "boolean", "timestamp",
# "path" for the ...Path variants, "bool" for the Is* tests, "rules"/"rule" for And/Or and Not).
OPERATORS: Final[dict[str, str]] = {}
_DISPATCH: dict[str, _Evaluator] = {}


def _register() -> None:
    families: list[tuple[str, str, Callable[[Any], Any], dict[str, Callable[[Any, Any], bool]]]] = [
        ("String", "string", _as_string, _STRING_RELATIONS),
        ("Numeric", "number", _as_number, _RELATIONS),
        ("Timestamp", "timestamp", _as_timestamp, _RELATIONS),
        ("Boolean", "boolean", _as_boolean, {"Equals": operator.eq}),
    ]
    for family, operand_type, coerce, relations in families:
        for suffix, relation in relations.items():
            OPERATORS[family + suffix] = operand_type
            _DISPATCH[family + suffix] = _comparison(coerce, relation)
            OPERATORS[family + suffix + "Path"] = "path"
            _DISPATCH[family + suffix + "Path"] = _path_comparison(coerce, relation)
    OPERATORS["StringMatches"] = "string"
    _DISPATCH["StringMatches"] = _comparison(_as_string, string_matches)
    tests: dict[str, Callable[[Any], bool]] = {
        "IsNull": lambda v: v is None,
        "IsNumeric": _is_number,
        "IsString": lambda v: isinstance(v, str),
        "IsBoolean": lambda v: isinstance(v, bool),
        "IsTimestamp": lambda v: isinstance(v, str) and timestamp_key(v) is not None,
    }
    for name, test in tests.items():
        OPERATORS[name] = "bool"
        _DISPATCH[name] = _type_test(test)
    OPERATORS["IsPresent"] = "bool"
    _DISPATCH["IsPresent"] = _is_present
    OPERATORS.update({"And": "rules", "Or": "rules", "Not": "rule"})
    _DISPATCH.update({"And": _and, "Or": _or, "Not": _not})


_register()

COMPARISON_OPERATORS: Final[frozenset[str]] = frozenset(
    op for op, kind in OPERATORS.items() if kind not in ("rules", "rule")
)
_BOOLEAN_OPERATORS: Final[frozenset[str]] = frozenset({"And", "Or", "Not"})


def evaluate_rule(rule: Mapping[str, Any], resolve: Callable[[str], Any]) -> bool:
    """Evaluate one Choice rule (JSONPath flavour) against the state's input.

    ``resolve(path)`` returns the value a path (``$.a``, ``$$.Execution.Input.x``, ``$var.f``)
    selects, or raises ``PathNotFound``. A missing ``Variable`` (except under ``IsPresent``) or
    ``...Path`` operand raises ``StatesError("States.Runtime", ...)`` with AWS's cause. A rule with
    no operator (which validation rejects) raises ``ValueError``.
    """
    for key in rule:
        evaluate = _DISPATCH.get(key)
        if evaluate is not None:
            return evaluate(rule, key, resolve)
    raise ValueError(f"Choice rule has no comparison operator: {dict(rule)!r}")


# --------------------------------------------------------------------------------------------------
# Static checks

JSONATA_RULE_FIELDS: Final[frozenset[str]] = frozenset({"Condition", "Next", "Assign", "Output", "Comment"})
_TOP_LEVEL_FIELDS: Final[frozenset[str]] = frozenset({"Next", "Assign", "Comment"})
_TYPE_NAMES: Final[dict[str, str]] = {
    "string": "a string",
    "number": "a number",
    "boolean": "a boolean",
    "timestamp": "an ISO-8601 extended offset date-time string (e.g. 2016-03-14T01:59:00Z)",
    "bool": "a boolean",
    "path": "a valid JSONPath",
    "rules": "a non-empty array of Choice rules",
    "rule": "a Choice rule object",
}


def _is_jsonata_template(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("{%") and value.endswith("%}") and len(value) >= 4


def _check_next(rule: Mapping[str, Any], ptr: str, problems: list[Problem]) -> None:
    if "Next" not in rule:
        problems.append(Problem(ptr, "A top-level Choice rule must have the field 'Next'"))
    elif not isinstance(rule["Next"], str) or not rule["Next"]:
        problems.append(
            Problem(child(ptr, "Next"), f"'Next' must be a non-empty string, got {json_type(rule['Next'])}")
        )


def _check_assign(rule: Mapping[str, Any], ptr: str, problems: list[Problem]) -> None:
    if "Assign" in rule and not isinstance(rule["Assign"], Mapping):
        problems.append(
            Problem(child(ptr, "Assign"), f"'Assign' must be an object, got {json_type(rule['Assign'])}")
        )


def _check_jsonata_rule(rule: Mapping[str, Any], ptr: str, top_level: bool) -> list[Problem]:
    problems: list[Problem] = []
    if not top_level:
        problems.append(
            Problem(child(ptr, "Condition"), "'Condition' is only allowed in a top-level Choice rule")
        )
    condition = rule["Condition"]
    if not isinstance(condition, bool) and not _is_jsonata_template(condition):
        problems.append(
            Problem(
                child(ptr, "Condition"),
                "'Condition' must be a JSONata expression '{% ... %}' or a boolean, "
                f"got {json_type(condition)}",
            )
        )
    for key in rule:
        if key in JSONATA_RULE_FIELDS:
            continue
        if key in OPERATORS or key == "Variable":
            message = f"Field '{key}' is a JSONPath Choice operator and cannot be used with 'Condition'"
        else:
            message = f"Field '{key}' is not supported in a JSONata Choice rule"
        problems.append(Problem(child(ptr, key), message))
    if top_level:
        _check_next(rule, ptr, problems)
        _check_assign(rule, ptr, problems)
    return problems


def _check_operand(op: str, value: Any, ptr: str, problems: list[Problem]) -> None:
    """Check the operand of a comparison or Is* operator (not And/Or/Not)."""
    kind = OPERATORS[op]
    where = child(ptr, op)
    ok: bool
    if kind == "string":
        ok = isinstance(value, str)
    elif kind == "number":
        ok = _is_number(value)
    elif kind in ("boolean", "bool"):
        ok = isinstance(value, bool)
    elif kind == "timestamp":
        ok = timestamp_key(value) is not None if isinstance(value, str) else False
    elif not isinstance(value, str):  # "path"
        ok = False
    else:
        why = check_path(value)
        if why is not None:
            problems.append(Problem(where, f"'{op}' must be a valid JSONPath: {why}"))
        return
    if not ok:
        shown = repr(value) if isinstance(value, str) else json_type(value)
        problems.append(Problem(where, f"'{op}' must be {_TYPE_NAMES[kind]}, got {shown}"))


def check_rule(rule: Any, ptr: str, *, top_level: bool) -> list[Problem]:
    """Validate the shape of one Choice rule; return every problem found.

    ``ptr`` is the JSON Pointer of the rule (``/States/Pick/Choices/0``); problems point at the
    offending field. A top-level rule needs ``Next`` and may carry ``Assign`` and ``Comment``; a
    nested rule (inside ``And``/``Or``/``Not``) must have neither ``Next`` nor ``Assign``. A rule with
    ``Condition`` is a JSONata rule (``Condition``, ``Next``, ``Assign``, ``Output``, ``Comment``).
    Otherwise exactly one operator is required, comparison and ``Is*`` operators need a valid
    ``Variable`` path and an operand of the right type, ``And``/``Or`` a non-empty array of rules,
    ``Not`` one rule; nested rules are checked recursively. Unknown fields are reported.
    Whether ``Next`` names an existing state is left to the definition validator.
    """
    if not isinstance(rule, Mapping):
        return [Problem(ptr, f"A Choice rule must be an object, got {json_type(rule)}")]
    if "Condition" in rule:
        return _check_jsonata_rule(rule, ptr, top_level)

    problems: list[Problem] = []
    operators = [key for key in rule if key in OPERATORS]
    for key in rule:
        if key in OPERATORS or key in ("Variable", "Comment"):
            continue
        if key in _TOP_LEVEL_FIELDS:
            if not top_level:
                problems.append(
                    Problem(child(ptr, key), f"Field '{key}' is not allowed in a nested Choice rule")
                )
        elif key == "Output":
            problems.append(
                Problem(child(ptr, key), "Field 'Output' is only supported in JSONata Choice rules")
            )
        else:
            problems.append(Problem(child(ptr, key), f"Field '{key}' is not supported in a Choice rule"))
    if top_level:
        _check_next(rule, ptr, problems)
        _check_assign(rule, ptr, problems)

    if not operators:
        problems.append(
            Problem(ptr, "A Choice rule must have exactly one comparison operator, And, Or or Not")
        )
        return problems
    if len(operators) > 1:
        problems.append(
            Problem(ptr, "A Choice rule must have exactly one operator, found: " + ", ".join(operators))
        )

    for op in operators:
        value = rule[op]
        if op in _BOOLEAN_OPERATORS:
            if op == "Not":
                if not isinstance(value, Mapping):
                    problems.append(
                        Problem(child(ptr, op), f"'Not' must be a Choice rule object, got {json_type(value)}")
                    )
                else:
                    problems.extend(check_rule(value, child(ptr, op), top_level=False))
            elif not isinstance(value, list) or not value:
                got = "an empty array" if isinstance(value, list) else json_type(value)
                problems.append(
                    Problem(child(ptr, op), f"'{op}' must be a non-empty array of Choice rules, got {got}")
                )
            else:
                for i, sub in enumerate(value):
                    problems.extend(check_rule(sub, child(ptr, op, i), top_level=False))
        else:
            _check_operand(op, value, ptr, problems)

    needs_variable = any(op not in _BOOLEAN_OPERATORS for op in operators)
    if "Variable" in rule:
        variable = rule["Variable"]
        if not needs_variable:
            problems.append(
                Problem(child(ptr, "Variable"), f"Field 'Variable' is not allowed with '{operators[0]}'")
            )
        elif not isinstance(variable, str):
            problems.append(
                Problem(
                    child(ptr, "Variable"),
                    f"'Variable' must be a JSONPath string, got {json_type(variable)}",
                )
            )
        else:
            why = check_path(variable)
            if why is not None:
                problems.append(
                    Problem(child(ptr, "Variable"), f"'Variable' must be a valid JSONPath: {why}")
                )
    elif needs_variable:
        problems.append(Problem(ptr, f"A Choice rule with '{operators[0]}' must have the field 'Variable'"))
    return problems
