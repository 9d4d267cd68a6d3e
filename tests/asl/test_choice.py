"""Choice rules and timestamps: the AWS-recorded corpus, unit cases and properties."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.asl.choice import (
    COMPARISON_OPERATORS,
    OPERATORS,
    check_rule,
    evaluate_rule,
    invalid_path_cause,
    string_matches,
)
from orchestrator.asl.paths import PathNotFound, select, split_root
from orchestrator.asl.problems import Problem
from orchestrator.asl.timestamps import format_timestamp, parse_timestamp, timestamp_key
from orchestrator.errors import RUNTIME, StatesError

CORPUS = Path("/work/shared/conformance")


def resolver(
    data: Any, context: Any = None, variables: Mapping[str, Any] | None = None
) -> Callable[[str], Any]:
    """The resolve callback an interpreter hands to evaluate_rule: ``$``, ``$$`` and ``$var`` roots."""
    variables = variables or {}

    def resolve(path: str) -> Any:
        root, rest = split_root(path)
        if root == "$":
            doc = data
        elif root == "$$":
            doc = context
        elif root[1:] in variables:
            doc = variables[root[1:]]
        else:
            raise PathNotFound(path)
        return select(rest, doc)

    return resolve


def ev(rule: Mapping[str, Any], data: Any, **kw: Any) -> bool:
    return evaluate_rule(rule, resolver(data, **kw))


def choose(state: Mapping[str, Any], resolve: Callable[[str], Any]) -> str | None:
    """The Next of the first matching rule, else Default (None: no Default)."""
    for rule in state["Choices"]:
        if evaluate_rule(rule, resolve):
            return str(rule["Next"])
    default = state.get("Default")
    return None if default is None else str(default)


# ---------------------------------------------------------------------------------------------------
# The corpus recorded from real AWS


def _cases(category: str) -> list[tuple[str, dict[str, Any]]]:
    folder = CORPUS / category
    if not folder.is_dir():
        return []
    return [(p.stem, json.loads(p.read_text())) for p in sorted(folder.glob("*.json"))]


def _definition(case: Mapping[str, Any]) -> dict[str, Any]:
    d = case.get("definition")
    text: str = case.get("definition_text", "")
    return dict(d) if d is not None else dict(json.loads(text))


OPERATOR_CASES = _cases("choice_operators")
CHOICE_CASES = _cases("choice")
needs_corpus = pytest.mark.skipif(not OPERATOR_CASES, reason="conformance corpus not available")


@needs_corpus
def test_corpus_is_complete() -> None:
    assert len(OPERATOR_CASES) == 472
    assert len(CHOICE_CASES) == 4


@needs_corpus
@pytest.mark.parametrize(("name", "case"), OPERATOR_CASES, ids=[n for n, _ in OPERATOR_CASES])
def test_choice_operators_corpus(name: str, case: dict[str, Any]) -> None:
    """Each case branches to a Pass whose Result is the recorded output: the branch must agree."""
    definition = _definition(case)
    states = definition["States"]
    choice = states[definition["StartAt"]]
    assert choice["Type"] == "Choice"
    target = choose(choice, resolver(case["input"]))
    assert target is not None
    assert case["expected"]["status"] == "SUCCEEDED"
    results = [s.get("Result") for s in states.values() if s["Type"] == "Pass"]
    # the recorded output identifies exactly one branch, so the check is not vacuous
    assert results.count(case["expected"]["output"]) == 1
    assert states[target]["Result"] == case["expected"]["output"]


@needs_corpus
@pytest.mark.parametrize(("name", "case"), CHOICE_CASES, ids=[n for n, _ in CHOICE_CASES])
def test_choice_scenarios_corpus(name: str, case: dict[str, Any]) -> None:
    """The scenario cases succeed with the input as output: the branch taken must be a Pass."""
    definition = _definition(case)
    states = definition["States"]
    target = choose(states[definition["StartAt"]], resolver(case["input"]))
    assert case["expected"] == {"status": "SUCCEEDED", "output": case["input"]}
    assert target is not None
    assert states[target]["Type"] == "Pass"


def test_choice_scenarios_pick_the_documented_branch() -> None:
    """The AWS documentation example: {type: Private, value: 22} goes to ValueInTwenties."""
    state = {
        "Type": "Choice",
        "Choices": [
            {"Not": {"Variable": "$.type", "StringEquals": "Private"}, "Next": "Public"},
            {"Variable": "$.value", "NumericEquals": 0, "Next": "ValueIsZero"},
            {
                "And": [
                    {"Variable": "$.value", "NumericGreaterThanEquals": 20},
                    {"Variable": "$.value", "NumericLessThan": 30},
                ],
                "Next": "ValueInTwenties",
            },
        ],
        "Default": "DefaultState",
    }
    assert choose(state, resolver({"type": "Private", "value": 22})) == "ValueInTwenties"
    assert choose(state, resolver({"type": "Private", "value": 0})) == "ValueIsZero"
    assert choose(state, resolver({"type": "Public", "value": 0})) == "Public"
    assert choose(state, resolver({"type": "Private", "value": 30})) == "DefaultState"


@needs_corpus
@pytest.mark.parametrize(
    ("name", "case"), OPERATOR_CASES + CHOICE_CASES, ids=[n for n, _ in OPERATOR_CASES + CHOICE_CASES]
)
def test_corpus_rules_pass_static_checks(name: str, case: dict[str, Any]) -> None:
    """AWS accepted every one of these definitions, so check_rule must find nothing."""
    definition = _definition(case)
    for state_name, state in definition["States"].items():
        if state["Type"] == "Choice":
            for i, rule in enumerate(state["Choices"]):
                assert check_rule(rule, f"/States/{state_name}/Choices/{i}", top_level=True) == []


# ---------------------------------------------------------------------------------------------------
# evaluate_rule: operators


@pytest.mark.parametrize(
    ("rule", "data", "expected"),
    [
        ({"Variable": "$.v", "StringEquals": "a"}, {"v": "a"}, True),
        ({"Variable": "$.v", "StringEquals": "a"}, {"v": "A"}, False),
        ({"Variable": "$.v", "StringEquals": "1"}, {"v": 1}, False),
        ({"Variable": "$.v", "StringLessThan": "b"}, {"v": "a"}, True),
        ({"Variable": "$.v", "StringLessThan": "a"}, {"v": "a"}, False),
        ({"Variable": "$.v", "StringGreaterThan": "a"}, {"v": "b"}, True),
        ({"Variable": "$.v", "StringLessThanEquals": "a"}, {"v": "a"}, True),
        ({"Variable": "$.v", "StringGreaterThanEquals": "b"}, {"v": "a"}, False),
        ({"Variable": "$.v", "StringGreaterThan": "Z"}, {"v": "a"}, True),  # code-unit order
        ({"Variable": "$.v", "NumericEquals": 1}, {"v": 1.0}, True),
        ({"Variable": "$.v", "NumericEquals": 1}, {"v": True}, False),
        ({"Variable": "$.v", "NumericEquals": 0}, {"v": False}, False),
        ({"Variable": "$.v", "NumericEquals": 1}, {"v": "1"}, False),
        ({"Variable": "$.v", "NumericLessThan": 2}, {"v": 1.5}, True),
        ({"Variable": "$.v", "NumericGreaterThan": 2}, {"v": 2.000001}, True),
        ({"Variable": "$.v", "NumericLessThanEquals": -1}, {"v": -1}, True),
        ({"Variable": "$.v", "NumericGreaterThanEquals": 10**20}, {"v": 10**20 + 1}, True),
        ({"Variable": "$.v", "BooleanEquals": True}, {"v": True}, True),
        ({"Variable": "$.v", "BooleanEquals": False}, {"v": 0}, False),
        ({"Variable": "$.v", "BooleanEquals": True}, {"v": "true"}, False),
        (
            {"Variable": "$.v", "TimestampEquals": "2024-01-01T00:00:00Z"},
            {"v": "2024-01-01T01:00:00+01:00"},
            True,
        ),
        (
            {"Variable": "$.v", "TimestampEquals": "2024-01-01T00:00:00Z"},
            {"v": "2024-01-01T00:00:00.000Z"},
            True,
        ),
        ({"Variable": "$.v", "TimestampEquals": "2024-01-01T00:00:00Z"}, {"v": "2024-01-01T00:00:00"}, False),
        ({"Variable": "$.v", "TimestampEquals": "2024-01-01T00:00:00Z"}, {"v": 1704067200}, False),
        (
            {"Variable": "$.v", "TimestampLessThan": "2024-01-01T00:00:00Z"},
            {"v": "2023-12-31T23:59:59Z"},
            True,
        ),
        (
            {"Variable": "$.v", "TimestampLessThan": "2024-01-01T00:00:00.000000001Z"},
            {"v": "2024-01-01T00:00:00Z"},
            True,
        ),  # nanosecond precision
        (
            {"Variable": "$.v", "TimestampGreaterThan": "2024-01-01T00:00:00Z"},
            {"v": "2024-01-01T00:30:00-01:00"},
            True,
        ),
        (
            {"Variable": "$.v", "TimestampLessThanEquals": "2024-01-01T00:00:00Z"},
            {"v": "2024-01-01T00:00:00Z"},
            True,
        ),
        (
            {"Variable": "$.v", "TimestampGreaterThanEquals": "2024-01-01T00:00:00Z"},
            {"v": "2024-01-01T00:00:00+00:01"},
            False,
        ),
        ({"Variable": "$.v", "IsNull": True}, {"v": None}, True),
        ({"Variable": "$.v", "IsNull": False}, {"v": None}, False),
        ({"Variable": "$.v", "IsNumeric": True}, {"v": 1.5}, True),
        ({"Variable": "$.v", "IsNumeric": True}, {"v": False}, False),
        ({"Variable": "$.v", "IsNumeric": False}, {"v": None}, True),
        ({"Variable": "$.v", "IsString": True}, {"v": ""}, True),
        ({"Variable": "$.v", "IsBoolean": True}, {"v": False}, True),
        ({"Variable": "$.v", "IsBoolean": True}, {"v": 0}, False),
        ({"Variable": "$.v", "IsTimestamp": True}, {"v": "2016-03-14T01:59:00Z"}, True),
        ({"Variable": "$.v", "IsTimestamp": True}, {"v": "2016-03-14T01:59:00.123456789+05:30"}, True),
        ({"Variable": "$.v", "IsTimestamp": True}, {"v": "2016-03-14T01:59:00"}, False),
        ({"Variable": "$.v", "IsTimestamp": True}, {"v": "2016-03-14 01:59:00Z"}, False),
        ({"Variable": "$.v", "IsTimestamp": True}, {"v": "2016-02-30T01:59:00Z"}, False),
        ({"Variable": "$.v", "IsTimestamp": False}, {"v": 12}, True),
        ({"Variable": "$.v", "IsPresent": True}, {"v": None}, True),
        ({"Variable": "$.v", "IsPresent": False}, {"v": None}, False),
        ({"Variable": "$.v", "IsPresent": True}, {}, False),
        ({"Variable": "$.v", "IsPresent": False}, {}, True),
        ({"Variable": "$.a.b[3]", "IsPresent": False}, {"a": {"b": [1]}}, True),
    ],
)
def test_operators(rule: dict[str, Any], data: Any, expected: bool) -> None:
    assert ev(rule, data) is expected


@pytest.mark.parametrize(
    ("value", "pattern", "expected"),
    [
        ("foo23.log", "foo*.log", True),
        ("zebra.log", "*.log", True),
        ("foobar.zebra", "foo*.*", True),
        ("foo.log", "foo*.log", True),
        ("foo.txt", "foo*.log", False),
        ("", "*", True),
        ("", "", True),
        ("a", "", False),
        ("abc", "a*b*c", True),
        ("ac", "a*b*c", False),
        ("aXbXc", "a*b*c", True),
        ("abab", "*ab", True),
        ("aba", "ab*ba", False),  # prefix and suffix may not overlap
        ("abba", "ab*ba", True),
        ("line1\nline2", "line1*2", True),  # * spans newlines
        ("a*b", "a\\*b", True),  # \* is a literal star
        ("axb", "a\\*b", False),
        ("a\\b", "a\\\\b", True),  # \\ is a literal backslash
        ("a\\xb", "a\\\\*b", True),
        ("a\\b", "a\\b", True),  # a backslash before anything else stands for itself
        ("a.b", "a?b", False),  # no other wildcard: ? . [ are literal
        ("a?b", "a?b", True),
        ("[ab]", "[ab]", True),
        ("a", "[ab]", False),
    ],
)
def test_string_matches(value: str, pattern: str, expected: bool) -> None:
    assert string_matches(value, pattern) is expected
    assert ev({"Variable": "$.v", "StringMatches": pattern}, {"v": value}) is expected


def test_string_matches_on_non_strings_is_false() -> None:
    values: list[Any] = [None, 1, True, [], {}, ["a"]]
    for value in values:
        assert ev({"Variable": "$.v", "StringMatches": "*"}, {"v": value}) is False


def test_string_order_is_java_utf16_order() -> None:
    # U+1F600 is a surrogate pair (D83D DE00) in UTF-16, so Java orders it below U+FFFD.
    assert ev({"Variable": "$.v", "StringLessThan": "\ufffd"}, {"v": "\U0001f600"}) is True
    assert ev({"Variable": "$.v", "StringGreaterThan": "\ufffd"}, {"v": "\U0001f600"}) is False
    assert ev({"Variable": "$.v", "StringLessThan": "é"}, {"v": "e"}) is True
    assert ev({"Variable": "$.v", "StringLessThan": "ab"}, {"v": "a"}) is True


@pytest.mark.parametrize(
    ("op", "left", "right", "expected"),
    [
        ("StringEqualsPath", "a", "a", True),
        ("StringEqualsPath", 1, 1, False),
        ("StringLessThanPath", "a", "b", True),
        ("StringGreaterThanEqualsPath", "a", 1, False),
        ("NumericEqualsPath", 1, 1.0, True),
        ("NumericEqualsPath", 1, "1", False),
        ("NumericLessThanPath", 1, 2, True),
        ("NumericGreaterThanPath", 3, 2.5, True),
        ("NumericLessThanEqualsPath", True, 1, False),
        ("NumericGreaterThanEqualsPath", 2, 2, True),
        ("BooleanEqualsPath", False, False, True),
        ("BooleanEqualsPath", 0, False, False),
        ("TimestampEqualsPath", "2024-01-01T00:00:00Z", "2024-01-01T02:00:00+02:00", True),
        ("TimestampLessThanPath", "2024-01-01T00:00:00Z", "2024-01-01T00:00:01Z", True),
        ("TimestampGreaterThanPath", "2024-01-01T00:00:00Z", "2024-01-01T00:00:01Z", False),
        ("TimestampLessThanEqualsPath", "2024-01-01T00:00:00Z", "bad", False),
        ("TimestampGreaterThanEqualsPath", "2024-01-01T00:00:01Z", "2024-01-01T00:00:01Z", True),
    ],
)
def test_path_operators(op: str, left: Any, right: Any, expected: bool) -> None:
    assert ev({"Variable": "$.l", op: "$.r"}, {"l": left, "r": right}) is expected


def test_every_comparison_has_a_path_variant() -> None:
    literal = {op for op in COMPARISON_OPERATORS if not op.endswith("Path") and not op.startswith("Is")}
    literal.discard("StringMatches")
    assert len(literal) == 16
    assert all(op + "Path" in OPERATORS for op in literal)
    assert "StringMatchesPath" not in OPERATORS


def test_composites() -> None:
    lo = {"Variable": "$.v", "NumericGreaterThanEquals": 20}
    hi = {"Variable": "$.v", "NumericLessThan": 30}
    assert ev({"And": [lo, hi]}, {"v": 25}) is True
    assert ev({"And": [lo, hi]}, {"v": 30}) is False
    assert ev({"Or": [{"Not": lo}, {"Not": hi}]}, {"v": 30}) is True
    assert ev({"Or": [{"Not": lo}, {"Not": hi}]}, {"v": 25}) is False
    assert ev({"Not": {"Not": {"And": [lo, {"Or": [hi]}]}}}, {"v": 21}) is True
    assert ev({"And": [lo]}, {"v": 20}) is True


def test_composites_short_circuit() -> None:
    """A false And / true Or stops evaluating: a later missing path does not fail the state."""
    missing = {"Variable": "$.missing", "NumericEquals": 1}
    assert ev({"And": [{"Variable": "$.v", "IsNull": True}, missing]}, {"v": 1}) is False
    assert ev({"Or": [{"Variable": "$.v", "IsNumeric": True}, missing]}, {"v": 1}) is True
    with pytest.raises(StatesError):
        ev({"Or": [{"Variable": "$.v", "IsNull": True}, missing]}, {"v": 1})


def test_is_present_guards_a_missing_field() -> None:
    rule = {
        "And": [
            {"Variable": "$.user", "IsPresent": True},
            {"Variable": "$.user", "StringEquals": "bob"},
        ]
    }
    assert ev(rule, {}) is False
    assert ev(rule, {"user": "bob"}) is True


# ---------------------------------------------------------------------------------------------------
# evaluate_rule: roots and missing paths


def test_context_object_and_variables() -> None:
    context = {"Execution": {"Input": {"x": 3}}}
    assert ev({"Variable": "$$.Execution.Input.x", "NumericEquals": 3}, {}, context=context) is True
    variables = {"guess": "7", "answer": "7", "obj": {"n": 1}}
    assert ev({"Variable": "$guess", "StringEqualsPath": "$answer"}, {}, variables=variables) is True
    assert ev({"Variable": "$obj.n", "NumericEquals": 1}, {}, variables=variables) is True
    assert ev({"Variable": "$nothing", "IsPresent": False}, {}, variables=variables) is True
    assert ev({"Variable": "$.v", "NumericLessThanPath": "$$.Limit"}, {"v": 1}, context={"Limit": 2}) is True


@pytest.mark.parametrize(
    "op",
    sorted(
        op
        for op in COMPARISON_OPERATORS
        if op != "IsPresent" and not op.startswith("Is") and not op.endswith("Path")
    ),
)
def test_missing_variable_is_a_runtime_error(op: str) -> None:
    operand = {"string": "x", "number": 1, "boolean": True, "timestamp": "2024-01-01T00:00:00Z"}[
        OPERATORS[op]
    ]
    with pytest.raises(StatesError) as info:
        ev({"Variable": "$.missing", op: operand}, {"v": 1})
    assert info.value.error == RUNTIME == "States.Runtime"
    assert info.value.cause == (
        "Invalid path '$.missing': The choice state's condition path references an invalid value."
    )


@pytest.mark.parametrize("op", ["IsNull", "IsNumeric", "IsString", "IsBoolean", "IsTimestamp"])
def test_type_tests_on_missing_variable_fail(op: str) -> None:
    with pytest.raises(StatesError) as info:
        ev({"Variable": "$.missing", op: False}, {})
    assert info.value.cause == invalid_path_cause("$.missing")


def test_missing_variable_cause_names_the_path_as_written() -> None:
    with pytest.raises(StatesError) as info:
        ev({"Variable": "$missingVar.field", "StringEquals": "x"}, {})
    assert info.value.cause == invalid_path_cause("$missingVar.field")
    with pytest.raises(StatesError) as info:
        ev({"Variable": "$$.Execution.Nope", "StringEquals": "x"}, {}, context={"Execution": {}})
    assert "Invalid path '$$.Execution.Nope'" in info.value.cause


def test_missing_path_operand_is_a_runtime_error() -> None:
    with pytest.raises(StatesError) as info:
        ev({"Variable": "$.num1", "NumericEqualsPath": "$.missing"}, {"num1": 1})
    assert info.value.error == "States.Runtime"
    assert info.value.cause == invalid_path_cause("$.missing")


def test_missing_variable_is_reported_before_missing_operand() -> None:
    with pytest.raises(StatesError) as info:
        ev({"Variable": "$.a", "NumericEqualsPath": "$.b"}, {})
    assert info.value.cause == invalid_path_cause("$.a")


def test_rule_without_operator_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="no comparison operator"):
        ev({"Variable": "$.v", "Next": "X"}, {"v": 1})


def test_metadata_fields_do_not_disturb_evaluation() -> None:
    rule = {"Comment": "c", "Assign": {"x": 1}, "Next": "N", "Variable": "$.v", "IsNull": True}
    assert ev(rule, {"v": None}) is True


# ---------------------------------------------------------------------------------------------------
# check_rule


def pointers(problems: list[Problem]) -> list[str]:
    return sorted(p.pointer for p in problems)


P = "/States/C/Choices/0"


@pytest.mark.parametrize(
    "rule",
    [
        {"Variable": "$.a", "StringEquals": "x", "Next": "N"},
        {"Variable": "$.a", "StringMatches": "log-*.txt", "Next": "N"},
        {"Variable": "$.a", "NumericEquals": 1.5, "Next": "N"},
        {"Variable": "$.a", "NumericLessThanPath": "$.b", "Next": "N"},
        {"Variable": "$.a", "BooleanEquals": False, "Next": "N"},
        {"Variable": "$.a", "TimestampEquals": "2016-03-14T01:59:00Z", "Next": "N"},
        {"Variable": "$.a", "TimestampLessThan": "2016-03-14T01:59:00.5+01:00", "Next": "N"},
        {"Variable": "$.a", "IsPresent": False, "Next": "N", "Assign": {"x": 1}, "Comment": "c"},
        {"Variable": "$$.Execution.Input.a", "IsTimestamp": True, "Next": "N"},
        {"Variable": "$guess", "StringEqualsPath": "$answer", "Next": "N"},
        {"Variable": "$.items[0].name", "IsString": True, "Next": "N"},
        {
            "And": [{"Variable": "$.a", "IsNull": True}, {"Not": {"Variable": "$.b", "IsNull": True}}],
            "Next": "N",
        },
        {"Or": [{"Variable": "$.a", "NumericEquals": 1}], "Next": "N"},
        {"Not": {"Variable": "$.a", "StringEquals": "x"}, "Next": "N"},
        {"Condition": "{% $states.input.ok %}", "Next": "N"},
        {"Condition": True, "Next": "N", "Assign": {"x": "{% 1 %}"}, "Output": {"o": 1}, "Comment": "c"},
    ],
)
def test_check_rule_accepts(rule: dict[str, Any]) -> None:
    assert check_rule(rule, P, top_level=True) == []


def test_check_rule_nested_rules_have_no_next() -> None:
    assert check_rule({"Variable": "$.a", "IsNull": True}, P, top_level=False) == []
    problems = check_rule({"Variable": "$.a", "IsNull": True, "Next": "N"}, P, top_level=False)
    assert pointers(problems) == [P + "/Next"]
    problems = check_rule({"Variable": "$.a", "IsNull": True, "Assign": {}}, P, top_level=False)
    assert pointers(problems) == [P + "/Assign"]


def test_check_rule_top_level_needs_next() -> None:
    problems = check_rule({"Variable": "$.a", "IsNull": True}, P, top_level=True)
    assert pointers(problems) == [P]
    assert "Next" in problems[0].message
    problems = check_rule({"Variable": "$.a", "IsNull": True, "Next": 3}, P, top_level=True)
    assert pointers(problems) == [P + "/Next"]
    problems = check_rule({"Variable": "$.a", "IsNull": True, "Next": ""}, P, top_level=True)
    assert pointers(problems) == [P + "/Next"]


def test_check_rule_not_an_object() -> None:
    bads: list[Any] = [[], "x", 1, None]
    for bad in bads:
        problems = check_rule(bad, P, top_level=True)
        assert pointers(problems) == [P]


def test_check_rule_exactly_one_operator() -> None:
    problems = check_rule({"Variable": "$.a", "Next": "N"}, P, top_level=True)
    assert pointers(problems) == [P]
    assert "operator" in problems[0].message
    problems = check_rule(
        {"Variable": "$.a", "IsNull": True, "StringEquals": "x", "Next": "N"}, P, top_level=True
    )
    assert pointers(problems) == [P]
    assert "IsNull" in problems[0].message
    assert "StringEquals" in problems[0].message


def test_check_rule_variable() -> None:
    problems = check_rule({"StringEquals": "x", "Next": "N"}, P, top_level=True)
    assert pointers(problems) == [P]
    assert "Variable" in problems[0].message
    for bad in ("a.b", "", 5, "$.a[", "$..[?("):
        problems = check_rule({"Variable": bad, "StringEquals": "x", "Next": "N"}, P, top_level=True)
        assert pointers(problems) == [P + "/Variable"], bad
    problems = check_rule(
        {"Variable": "$.a", "Not": {"Variable": "$.a", "IsNull": True}, "Next": "N"}, P, top_level=True
    )
    assert pointers(problems) == [P + "/Variable"]


@pytest.mark.parametrize(
    ("op", "bad"),
    [
        ("StringEquals", 1),
        ("StringLessThan", None),
        ("StringMatches", ["a"]),
        ("NumericEquals", "1"),
        ("NumericGreaterThan", True),
        ("NumericLessThanEquals", {}),
        ("BooleanEquals", "true"),
        ("BooleanEquals", 1),
        ("TimestampEquals", "2016-03-14T01:59:00"),
        ("TimestampLessThan", "2016-13-14T01:59:00Z"),
        ("TimestampGreaterThanEquals", 1457920740),
        ("IsNull", "true"),
        ("IsPresent", 1),
        ("IsTimestamp", None),
        ("StringEqualsPath", "a"),
        ("NumericEqualsPath", 1),
        ("TimestampLessThanPath", "$.a["),
    ],
)
def test_check_rule_operand_types(op: str, bad: Any) -> None:
    problems = check_rule({"Variable": "$.a", op: bad, "Next": "N"}, P, top_level=True)
    assert pointers(problems) == [P + "/" + op]
    assert op in problems[0].message


def test_check_rule_composites() -> None:
    for op in ("And", "Or"):
        bads: list[Any] = [[], {}, "x", None]
        for bad in bads:
            problems = check_rule({op: bad, "Next": "N"}, P, top_level=True)
            assert pointers(problems) == [P + "/" + op], (op, bad)
    problems = check_rule({"Not": [{"Variable": "$.a", "IsNull": True}], "Next": "N"}, P, top_level=True)
    assert pointers(problems) == [P + "/Not"]


def test_check_rule_reports_every_problem_with_nested_pointers() -> None:
    rule = {
        "And": [
            {"Variable": "$.a", "NumericEquals": "1"},
            {"Variable": "nope", "IsNull": True, "Next": "X"},
            {"Or": [{"Not": {"StringEquals": 1}}]},
            {"Variable": "$.b", "IsNull": True, "Extra": 1},
        ],
        "Colour": "red",
    }
    problems = check_rule(rule, P, top_level=True)
    assert pointers(problems) == sorted(
        [
            P,  # no Next
            P + "/Colour",
            P + "/And/0/NumericEquals",
            P + "/And/1/Variable",
            P + "/And/1/Next",
            P + "/And/2/Or/0/Not",  # no Variable
            P + "/And/2/Or/0/Not/StringEquals",
            P + "/And/3/Extra",
        ]
    )


def test_check_rule_pointer_escaping() -> None:
    problems = check_rule({"Variable": "$.a", "IsNull": True}, "/States/a~0b~1c/Choices/2", top_level=True)
    assert pointers(problems) == ["/States/a~0b~1c/Choices/2"]


def test_check_rule_jsonata() -> None:
    assert pointers(check_rule({"Condition": "{% true %}"}, P, top_level=True)) == [P]
    bads: list[Any] = ["$.x", "{% x", 1, None, {}]
    for bad in bads:
        problems = check_rule({"Condition": bad, "Next": "N"}, P, top_level=True)
        assert pointers(problems) == [P + "/Condition"], bad
    problems = check_rule(
        {"Condition": "{% true %}", "Variable": "$.a", "StringEquals": "x", "Next": "N"}, P, top_level=True
    )
    assert pointers(problems) == [P + "/StringEquals", P + "/Variable"]
    problems = check_rule({"Condition": "{% true %}", "Next": "N", "Assign": []}, P, top_level=True)
    assert pointers(problems) == [P + "/Assign"]
    problems = check_rule({"Condition": "{% true %}", "Next": "N", "ResultPath": "$"}, P, top_level=True)
    assert pointers(problems) == [P + "/ResultPath"]
    problems = check_rule({"Not": {"Condition": "{% true %}"}, "Next": "N"}, P, top_level=True)
    assert pointers(problems) == [P + "/Not/Condition"]


def test_check_rule_output_only_in_jsonata() -> None:
    problems = check_rule({"Variable": "$.a", "IsNull": True, "Next": "N", "Output": 1}, P, top_level=True)
    assert pointers(problems) == [P + "/Output"]


# ---------------------------------------------------------------------------------------------------
# Timestamps


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2016-03-14T01:59:00Z", datetime(2016, 3, 14, 1, 59, tzinfo=UTC)),
        ("2016-03-05T21:29:29.243167252Z", datetime(2016, 3, 5, 21, 29, 29, 243167, tzinfo=UTC)),
        ("2026-11-21T01:53:01.00Z", datetime(2026, 11, 21, 1, 53, 1, tzinfo=UTC)),
        ("2026-11-21T01:53:01.5Z", datetime(2026, 11, 21, 1, 53, 1, 500000, tzinfo=UTC)),
        (
            "2012-10-09T19:00:55+01:00",
            datetime(2012, 10, 9, 19, 0, 55, tzinfo=timezone(timedelta(hours=1))),
        ),
        (
            "2012-10-09T19:00:55-05:30",
            datetime(2012, 10, 9, 19, 0, 55, tzinfo=timezone(-timedelta(hours=5, minutes=30))),
        ),
        ("2012-10-09T19:00:55-00:00", datetime(2012, 10, 9, 19, 0, 55, tzinfo=UTC)),
        ("2024-02-29T23:59:59Z", datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC)),
        ("2024-01-01T00:00:00+18:00", datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=18)))),
    ],
)
def test_parse_timestamp_accepts(text: str, expected: datetime) -> None:
    parsed = parse_timestamp(text)
    assert parsed == expected
    assert parsed is not None
    assert parsed.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    "text",
    [
        "2016-13-05T21:29:29Z",  # month 13 (recorded from AWS)
        "05-12-2016T21:29:29Z",  # not ISO (recorded)
        "2016-12-05T25:29:29Z",  # hour 25 (recorded)
        "2016-12-05 21:29:29Z",  # no T (recorded)
        "2016-12-05T21:29:29",  # no zone (recorded)
        "2026-11-21T01:53:01.000000",  # fraction, no zone (recorded)
        "2023-02-24 12:15:56.832957",
        "2023-02-24",
        "2023-02-30T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "2024-01-01T24:00:00Z",
        "2024-01-01T23:60:00Z",
        "2024-01-01T23:59:60Z",  # no leap seconds
        "2024-01-01T00:00Z",  # seconds are required
        "2024-01-01T00:00:00.Z",
        "2024-01-01T00:00:00.1234567890Z",  # at most nanoseconds
        "2024-01-01t00:00:00Z",
        "2024-01-01T00:00:00z",
        "2024-01-01T00:00:00+0100",
        "2024-01-01T00:00:00+01",
        "2024-01-01T00:00:00+01:60",
        "2024-01-01T00:00:00+18:01",
        "2024-01-01T00:00:00+19:00",
        "2024-01-01T00:00:00GMT",
        " 2024-01-01T00:00:00Z",
        "2024-01-01T00:00:00Z ",
        "24-01-01T00:00:00Z",
        "+2024-01-01T00:00:00Z",
        "2024-1-01T00:00:00Z",
        "0000-01-01T00:00:00Z",
        "\uff12\uff10\uff12\uff14-01-01T00:00:00Z",  # non-ASCII (fullwidth) digits
        "",
    ],
)
def test_parse_timestamp_rejects(text: str) -> None:
    assert parse_timestamp(text) is None
    assert timestamp_key(text) is None


def test_parse_timestamp_rejects_non_strings() -> None:
    values: list[Any] = [None, 0, 1.5, True, [], {}]
    for value in values:
        assert parse_timestamp(value) is None
        assert timestamp_key(value) is None


@pytest.mark.skipif(not (CORPUS / "wait").is_dir(), reason="conformance corpus not available")
def test_parse_timestamp_agrees_with_recorded_wait_cases() -> None:
    """Every Wait timestamp AWS saw: rejected exactly when AWS complained about the format."""
    seen = 0
    for _, case in _cases("wait"):
        state = next(iter(_definition(case)["States"].values()))
        if "Timestamp" in state:
            text = state["Timestamp"]
        elif "TimestampPath" in state:
            text = select(state["TimestampPath"], case["input"])
        else:
            continue
        rejected = "ISO-8601 extended offset date-time" in case["expected"].get("cause", "")
        assert (parse_timestamp(text) is None) is rejected, text
        seen += 1
    assert seen >= 12


def test_format_timestamp() -> None:
    assert format_timestamp(datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)) == "2024-01-02T03:04:05.123Z"
    assert format_timestamp(datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2024-01-02T03:04:05.000Z"
    assert format_timestamp(datetime(2024, 1, 2, 3, 4, 5, 999999, tzinfo=UTC)) == "2024-01-02T03:04:05.999Z"
    plus2 = timezone(timedelta(hours=2))
    assert format_timestamp(datetime(2024, 1, 1, 1, 0, tzinfo=plus2)) == "2023-12-31T23:00:00.000Z"
    assert format_timestamp(datetime(5, 6, 7, tzinfo=UTC)) == "0005-06-07T00:00:00.000Z"
    with pytest.raises(ValueError, match="timezone-aware"):
        format_timestamp(datetime(2024, 1, 1))


# ---------------------------------------------------------------------------------------------------
# Properties

json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
numbers = st.integers(min_value=-(10**18), max_value=10**18) | st.floats(
    allow_nan=False, allow_infinity=False
)


def escape_glob(text: str) -> str:
    return text.replace("\\", "\\\\").replace("*", "\\*")


@given(value=st.text(), literal=st.text())
def test_string_matches_without_wildcards_is_string_equals(value: str, literal: str) -> None:
    pattern = escape_glob(literal)
    data = {"v": value}
    assert ev({"Variable": "$.v", "StringMatches": pattern}, data) == ev(
        {"Variable": "$.v", "StringEquals": literal}, data
    )
    assert ev({"Variable": "$.v", "StringMatches": escape_glob(value)}, data) is True


@given(value=st.text(alphabet="ab*\\\n", max_size=12), pattern=st.text(alphabet="ab*\\\n", max_size=8))
def test_string_matches_agrees_with_a_regex_oracle(value: str, pattern: str) -> None:
    out, i = [], 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "*\\":
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if pattern[i] == "*" else re.escape(pattern[i]))
        i += 1
    oracle = re.fullmatch("".join(out), value, re.DOTALL) is not None
    assert string_matches(value, pattern) is oracle


@given(
    segments=st.lists(st.text(), min_size=1, max_size=4), fillers=st.lists(st.text(), min_size=3, max_size=3)
)
def test_string_matches_star_absorbs_anything(segments: list[str], fillers: list[str]) -> None:
    """``s0*s1*s2`` matches s0 + anything + s1 + anything + s2."""
    pattern = "*".join(escape_glob(s) for s in segments)
    value = segments[0] + "".join(f + s for f, s in zip(fillers, segments[1:], strict=False))
    assert string_matches(value, pattern)


def _leaf_rules() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.builds(lambda n: {"Variable": "$.n", "NumericGreaterThan": n}, numbers),
        st.builds(lambda s: {"Variable": "$.s", "StringLessThanEquals": s}, st.text(max_size=3)),
        st.builds(lambda b: {"Variable": "$.b", "BooleanEquals": b}, st.booleans()),
        st.builds(lambda b: {"Variable": "$.z", "IsPresent": b}, st.booleans()),
        st.builds(lambda b: {"Variable": "$.s", "IsString": b}, st.booleans()),
    )


rules = st.recursive(
    _leaf_rules(),
    lambda inner: st.one_of(
        st.builds(lambda r: {"Not": r}, inner),
        st.builds(lambda rs: {"And": rs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda rs: {"Or": rs}, st.lists(inner, min_size=1, max_size=3)),
    ),
    max_leaves=8,
)
inputs = st.fixed_dictionaries(
    {"n": numbers, "s": st.text(max_size=3), "b": st.booleans()}, optional={"z": json_values}
)


@given(rule=rules, data=inputs)
def test_not_negates(rule: dict[str, Any], data: dict[str, Any]) -> None:
    assert ev({"Not": rule}, data) is (not ev(rule, data))


@given(a=rules, b=rules, data=inputs)
def test_de_morgan(a: dict[str, Any], b: dict[str, Any], data: dict[str, Any]) -> None:
    assert ev({"Not": {"And": [a, b]}}, data) == ev({"Or": [{"Not": a}, {"Not": b}]}, data)
    assert ev({"And": [a, b]}, data) == (ev(a, data) and ev(b, data))
    assert ev({"Or": [a, b]}, data) == (ev(a, data) or ev(b, data))


@given(rule=rules)
def test_generated_rules_pass_static_checks(rule: dict[str, Any]) -> None:
    assert check_rule({**rule, "Next": "N"}, P, top_level=True) == []
    assert check_rule(rule, P, top_level=False) == []


def _relations(family: str, left: Any, right: Any) -> dict[str, bool]:
    data = {"l": left, "r": right}
    out = {}
    for rel in ("Equals", "LessThan", "GreaterThan", "LessThanEquals", "GreaterThanEquals"):
        literal = ev({"Variable": "$.l", family + rel: right}, data)
        via_path = ev({"Variable": "$.l", family + rel + "Path": "$.r"}, data)
        assert literal == via_path
        out[rel] = literal
    return out


def _check_order(r: dict[str, bool]) -> None:
    assert [r["LessThan"], r["Equals"], r["GreaterThan"]].count(True) == 1
    assert r["LessThanEquals"] == (r["LessThan"] or r["Equals"])
    assert r["GreaterThanEquals"] == (r["GreaterThan"] or r["Equals"])


@given(left=numbers, right=numbers)
def test_numeric_relations_are_a_total_order(left: float, right: float) -> None:
    r = _relations("Numeric", left, right)
    _check_order(r)
    assert r["LessThan"] == (left < right)
    assert r["Equals"] == (left == right)


@given(left=st.text(), right=st.text())
def test_string_relations_are_a_total_order(left: str, right: str) -> None:
    r = _relations("String", left, right)
    _check_order(r)
    assert r["Equals"] == (left == right)


@given(
    left=st.text(alphabet=st.characters(max_codepoint=0xD7FF)),
    right=st.text(alphabet=st.characters(max_codepoint=0xD7FF)),
)
def test_string_order_below_surrogates_is_code_point_order(left: str, right: str) -> None:
    assert ev({"Variable": "$.l", "StringLessThan": right}, {"l": left}) == (left < right)


@given(value=json_values, other=json_values)
def test_type_mismatch_is_false(value: Any, other: Any) -> None:
    data = {"v": value}
    if not isinstance(value, str):
        for op in ("StringEquals", "StringLessThan", "StringGreaterThanEquals", "StringMatches"):
            assert ev({"Variable": "$.v", op: "x"}, data) is False
    if not isinstance(value, int | float) or isinstance(value, bool):
        for op in ("NumericEquals", "NumericLessThan", "NumericGreaterThanEquals"):
            assert ev({"Variable": "$.v", op: 0}, data) is False
    if not isinstance(value, bool):
        assert ev({"Variable": "$.v", "BooleanEquals": True}, data) is False
        assert ev({"Variable": "$.v", "BooleanEquals": False}, data) is False
    if not isinstance(value, str):
        assert ev({"Variable": "$.v", "TimestampEquals": "2024-01-01T00:00:00Z"}, data) is False
    assert ev({"Variable": "$.v", "IsPresent": True}, data) is True
    kinds = [
        ev({"Variable": "$.v", op: True}, data) for op in ("IsNull", "IsNumeric", "IsString", "IsBoolean")
    ]
    assert kinds.count(True) == (0 if isinstance(value, list | dict) else 1)
    for op in ("IsNull", "IsNumeric", "IsString", "IsBoolean", "IsTimestamp"):
        assert ev({"Variable": "$.v", op: False}, data) is (not ev({"Variable": "$.v", op: True}, data))


aware_datetimes = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.just(UTC),
)
offsets = st.integers(min_value=-18 * 60, max_value=18 * 60).map(lambda m: timezone(timedelta(minutes=m)))


@given(dt=aware_datetimes, tz=offsets)
def test_format_parse_round_trip(dt: datetime, tz: timezone) -> None:
    text = format_timestamp(dt.astimezone(tz))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", text)
    assert parse_timestamp(text) == dt.replace(microsecond=dt.microsecond // 1000 * 1000)
    parsed = parse_timestamp(text)
    assert parsed is not None
    assert format_timestamp(parsed) == text


@given(
    dt=aware_datetimes,
    tz=offsets,
    nanos=st.integers(0, 999),
    digits=st.integers(1, 9),
    utc_as_z=st.booleans(),
)
def test_parse_written_timestamps(
    dt: datetime, tz: timezone, nanos: int, digits: int, utc_as_z: bool
) -> None:
    """Any valid text parses to the instant it denotes, whatever its offset and precision."""
    local = dt.astimezone(tz)
    offset = local.utcoffset()
    assert offset is not None
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    zone = "Z" if minutes == 0 and utc_as_z else f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    fraction = f"{local.microsecond:06d}{nanos:03d}"[:digits]
    text = (
        f"{local.year:04d}-{local.month:02d}-{local.day:02d}T"
        f"{local.hour:02d}:{local.minute:02d}:{local.second:02d}.{fraction}{zone}"
    )
    parsed = parse_timestamp(text)
    assert parsed is not None
    assert parsed.utcoffset() == offset
    full_nanos = int(fraction.ljust(9, "0"))
    assert parsed == local.replace(microsecond=full_nanos // 1000)
    key = timestamp_key(text)
    assert key == (parsed.astimezone(UTC), full_nanos % 1000)
    assert ev({"Variable": "$.t", "IsTimestamp": True}, {"t": text}) is True


@settings(max_examples=200)
@given(
    a=aware_datetimes,
    shift=st.integers(-2_000_000, 2_000_000).map(lambda us: timedelta(microseconds=us)),
    tz=offsets,
)
def test_timestamp_relations_follow_instants(a: datetime, shift: timedelta, tz: timezone) -> None:
    left = format_timestamp(a)
    right = (a + shift).astimezone(tz).isoformat(timespec="milliseconds")
    r = _relations("Timestamp", left, right)
    _check_order(r)
    ta, tb = parse_timestamp(left), parse_timestamp(right)
    assert ta is not None
    assert tb is not None
    assert r["LessThan"] == (ta < tb)
    assert r["Equals"] == (ta == tb)
