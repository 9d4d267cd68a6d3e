"""Tests of the intrinsic functions (``orchestrator.asl.intrinsics``).

Three layers:

* the cases AWS answered (``conformance/intrinsic_functions``), replayed through a tiny Pass-state
  harness, plus every intrinsic expression of the corpus through ``check_intrinsic``;
* unit tests per function, including the failures;
* properties (hypothesis): round trips, partition/range/unique laws, and a parser that never lets
  anything but its own errors escape.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import json
import math
import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.asl import paths
from orchestrator.asl.intrinsics import (
    IntrinsicSyntaxError,
    check_intrinsic,
    evaluate_intrinsic,
    is_intrinsic,
    parse_intrinsic,
)
from orchestrator.asl.paths import PathNotFound
from orchestrator.errors import StatesError

CORPUS = Path(os.environ.get("ASL_CONFORMANCE_DIR", "/work/shared/conformance"))
FIXED_UUID = "3f0c2a4e-8a1b-4c5d-9e6f-0a1b2c3d4e5f"


# --------------------------------------------------------------------------------------- helpers
def resolver(
    data: Any = None, context: Any = None, variables: dict[str, Any] | None = None
) -> Callable[[str], Any]:
    """A ``resolve`` over the state input, the context object and variables, as the engine has."""

    def resolve(path: str) -> Any:
        root, rest = paths.split_root(path)
        if root == "$":
            base = data
        elif root == "$$":
            base = context
        else:
            if variables is None or root[1:] not in variables:
                raise PathNotFound(path)
            base = variables[root[1:]]
        return paths.select(rest, base)

    return resolve


def ev(
    text: str,
    data: Any = None,
    *,
    context: Any = None,
    variables: dict[str, Any] | None = None,
    rng: random.Random | None = None,
) -> Any:
    return evaluate_intrinsic(
        text, resolver(data, context, variables), rng or random.Random(0), lambda: FIXED_UUID
    )


def failure(text: str, data: Any = None) -> str:
    """Evaluate expecting States.IntrinsicFailure; return the cause."""
    with pytest.raises(StatesError) as info:
        ev(text, data)
    assert info.value.error == "States.IntrinsicFailure"
    assert info.value.cause
    return info.value.cause


def literal(text: str) -> str:
    """Quote ``text`` as an intrinsic string literal."""
    escaped = text.replace("\\", "\\\\").replace("'", "\\'").replace("{", "\\{").replace("}", "\\}")
    return f"'{escaped}'"


def json_equal(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


# ------------------------------------------------------------------------------ recorded corpus
def _corpus_cases(folder: str) -> list[Path]:
    directory = CORPUS / folder
    return sorted(directory.glob("*.json")) if directory.is_dir() else []


def _compare_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("conformance_compare", CORPUS / "compare.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _definition(case: dict[str, Any]) -> dict[str, Any]:
    definition = case.get("definition")
    if definition is None:
        definition = json.loads(case["definition_text"])
    assert isinstance(definition, dict)
    return definition


def _payload(template: Any, resolve: Callable[[str], Any]) -> Any:
    """Parameters semantics: ``key.$`` values are paths or intrinsic calls, the rest is literal."""
    if isinstance(template, dict):
        out = {}
        for key, value in template.items():
            if key.endswith(".$") and isinstance(value, str):
                out[key[:-2]] = (
                    evaluate_intrinsic(value, resolve, random.Random(7), lambda: FIXED_UUID)
                    if is_intrinsic(value)
                    else resolve(value)
                )
            else:
                out[key] = _payload(value, resolve)
        return out
    if isinstance(template, list):
        return [_payload(v, resolve) for v in template]
    return template


def _run_pass_machine(definition: dict[str, Any], execution_input: Any) -> dict[str, Any]:
    """Run a machine made only of Pass states (InputPath/Parameters/Result/ResultPath/OutputPath)."""
    context = {
        "Execution": {
            "Id": "arn:aws:states:us-east-1:111111111111:execution:IntrinsicMachine-x1:local",
            "Input": execution_input,
            "Name": "local",
        },
        "StateMachine": {
            "Id": "arn:aws:states:us-east-1:111111111111:stateMachine:IntrinsicMachine-x1",
            "Name": "IntrinsicMachine-x1",
        },
    }
    document = execution_input
    name = definition["StartAt"]
    try:
        while True:
            state = definition["States"][name]
            effective = paths.select(state.get("InputPath", "$"), document)
            resolve = resolver(effective, context)
            if "Result" in state:
                result = state["Result"]
            elif "Parameters" in state:
                result = _payload(state["Parameters"], resolve)
            else:
                result = effective
            document = paths.set_path(state.get("ResultPath", "$"), document, result)
            document = paths.select(state.get("OutputPath", "$"), document)
            if state.get("End"):
                return {"status": "SUCCEEDED", "output": document}
            name = state["Next"]
    except StatesError as exc:
        return {"status": "FAILED", "error": exc.error, "cause": exc.cause}


def _only_pass_states(definition: dict[str, Any]) -> bool:
    return all(state.get("Type") == "Pass" for state in definition["States"].values())


INTRINSIC_CASES = _corpus_cases("intrinsic_functions")


@pytest.mark.skipif(not INTRINSIC_CASES, reason="conformance corpus not available")
@pytest.mark.parametrize("case_file", INTRINSIC_CASES, ids=lambda p: p.stem)
def test_recorded_aws_case(case_file: Path) -> None:
    case = json.loads(case_file.read_text())
    definition = _definition(case)
    if not _only_pass_states(definition):
        pytest.skip("not a Pass-only machine")
    actual = _run_pass_machine(definition, case["input"])
    verdict, detail = _compare_module().compare_result(case, actual)
    assert verdict.startswith("pass"), detail


def _intrinsic_fields(node: Any) -> Iterator[str]:
    """Every ``States.`` expression a definition evaluates (not those inside literal Result)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("Result", "Comment"):
                continue
            if isinstance(value, str) and is_intrinsic(value) and key.endswith((".$", "Path")):
                yield value
            else:
                yield from _intrinsic_fields(value)
    elif isinstance(node, list):
        for value in node:
            yield from _intrinsic_fields(value)


def _corpus_expressions() -> tuple[list[str], list[str]]:
    accepted: set[str] = set()
    refused: set[str] = set()
    for case_file in sorted(CORPUS.glob("*/*.json")) if CORPUS.is_dir() else []:
        case = json.loads(case_file.read_text())
        try:
            definition = _definition(case)
        except (KeyError, ValueError, AssertionError):
            continue  # a deliberately malformed definition
        if definition.get("QueryLanguage") == "JSONata":
            continue
        expressions = set(_intrinsic_fields(definition))
        if case["expected"]["status"] == "INVALID":
            # only cases whose sole intrinsic is the reason for the refusal
            if len(expressions) == 1 and "intrinsic" in case["expected"].get("message", "").lower():
                refused |= expressions
        else:
            accepted |= expressions
    return sorted(accepted), sorted(refused)


ACCEPTED_BY_AWS, REFUSED_BY_AWS = _corpus_expressions()


@pytest.mark.skipif(not ACCEPTED_BY_AWS, reason="conformance corpus not available")
@pytest.mark.parametrize("expression", ACCEPTED_BY_AWS)
def test_check_accepts_what_aws_accepted(expression: str) -> None:
    assert check_intrinsic(expression) is None


@pytest.mark.skipif(not REFUSED_BY_AWS, reason="conformance corpus not available")
@pytest.mark.parametrize("expression", REFUSED_BY_AWS)
def test_check_refuses_what_aws_refused(expression: str) -> None:
    message = check_intrinsic(expression)
    assert message is not None
    assert "escape" in message


# ----------------------------------------------------------------------------------- the syntax
def test_is_intrinsic() -> None:
    assert is_intrinsic("States.UUID()")
    assert not is_intrinsic("$.States")
    assert not is_intrinsic("states.UUID()")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"States.Format('it\'s')", "it's"),
        (r"States.Format('\{\}')", "{}"),
        (r"States.Format('back\\slash')", "back\\slash"),
        (r"States.Format('\\{}', 'x')", "\\x"),
        ("States.Format('tab\tand\nnewline')", "tab\tand\nnewline"),
        ("States.Format('{ alone')", "{ alone"),
        ("States.Format( 'a{}c' ,  'b' )", "abc"),
    ],
)
def test_string_literal_escapes(text: str, expected: str) -> None:
    assert check_intrinsic(text) is None
    assert ev(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "States.Array(1, -2, 3.5, -0.25, 1e3, true, false, null)",
            [1, -2, 3.5, -0.25, 1000.0, True, False, None],
        ),
        ("States.Array()", []),
        ("States.Array('a', States.Array('b', States.Array()))", ["a", ["b", []]]),
    ],
)
def test_literal_arguments(text: str, expected: Any) -> None:
    assert json_equal(ev(text), expected)


def test_literal_number_types() -> None:
    values = ev("States.Array(2, 2.0)")
    assert isinstance(values[0], int)
    assert isinstance(values[1], float)


def test_paths_are_resolved_exactly_as_written() -> None:
    seen: list[str] = []

    def resolve(path: str) -> Any:
        seen.append(path)
        return path

    text = "States.Array($, $.a.b, $['x y'][0], $$.Execution.Id, $myVar, $myVar.field, $.items[?(@.n > 1)])"
    result = evaluate_intrinsic(text, resolve, random.Random(0), lambda: FIXED_UUID)
    expected = [
        "$",
        "$.a.b",
        "$['x y'][0]",
        "$$.Execution.Id",
        "$myVar",
        "$myVar.field",
        "$.items[?(@.n > 1)]",
    ]
    assert seen == expected
    assert result == expected


def test_paths_against_input_context_and_variables() -> None:
    result = ev(
        "States.Array($.a, $$.Execution.Name, $v, $v.inner)",
        {"a": 1},
        context={"Execution": {"Name": "run-1"}},
        variables={"v": {"inner": [True]}},
    )
    assert result == [1, "run-1", {"inner": [True]}, [True]]


def test_path_not_found_propagates_unchanged() -> None:
    error = PathNotFound("$.missing")

    def resolve(path: str) -> Any:
        raise error

    with pytest.raises(PathNotFound) as info:
        evaluate_intrinsic("States.Format('{}', $.missing)", resolve, random.Random(0), lambda: FIXED_UUID)
    assert info.value is error


def test_parsed_calls_are_cached() -> None:
    text = "States.ArrayLength($.items)"
    assert parse_intrinsic(text) is parse_intrinsic(text)


@pytest.mark.parametrize(
    "text",
    [
        "States.Format('a'",
        "States.Format('a',)",
        "States.Format('unterminated)",
        "States.Format 'a'",
        "States.Array(1 2)",
        "States.Array(1) trailing",
        'States.Array("double")',
        "States.Array(True)",
        "States.Array(+1)",
        "States.Array(nul)",
        "States.Array(1e999)",
        "States.Array($.a[)",
        "States.Array($.a])",
        "States.Array(States.)",
        r"States.Format('bad \n escape')",
        r"States.Format('ends with \')",
        "States.",
        "States.Array(" * 100 + ")" * 100,
    ],
)
def test_malformed_calls(text: str) -> None:
    with pytest.raises(IntrinsicSyntaxError):
        parse_intrinsic(text)
    message = check_intrinsic(text)
    assert message is not None
    assert message.startswith("invalid intrinsic function call")
    cause = failure(text)
    assert "Invalid intrinsic function call" in cause


def test_syntax_error_message_gives_the_position() -> None:
    message = check_intrinsic("States.Array(1, 2 3)")
    assert message is not None
    assert "at character 19" in message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("States.Nope()", "unknown intrinsic function States.Nope"),
        ("States.format('x')", "unknown intrinsic function"),
        ("States.UUID(1)", "exactly 0"),
        ("States.Format()", "at least 1"),
        ("States.ArrayLength()", "exactly 1"),
        ("States.MathRandom(1)", "2 to 3"),
        ("States.MathRandom(1, 2, 3, 4)", "2 to 3"),
        ("States.JsonMerge($.a, $.b)", "exactly 3"),
        ("States.Array(States.Nope())", "unknown intrinsic function States.Nope"),
        ("States.MathAdd('1', 2)", "must be a number"),
        ("States.MathAdd(true, 2)", "must be a number"),
        ("States.ArrayLength('abc')", "must be an array"),
        ("States.ArrayRange(1.5, 3, 1)", "must be an integer"),
        ("States.ArrayGetItem($.a, 'x')", "must be an integer"),
        ("States.Format(1)", "must be a string"),
        ("States.JsonMerge($.a, $.b, 'false')", "must be a boolean"),
        ("States.JsonMerge($.a, $.b, true)", "shallow"),
        ("States.Hash($.a, 'SHA-999')", "unknown hash algorithm"),
        ("States.Hash($.a, 'sha-256')", "unknown hash algorithm"),
        ("States.Format('{} and {}', 1)", "2 placeholder(s)"),
        ("States.Format('none', 1)", "0 placeholder(s)"),
        ("States.ArrayRange(0, 10, 0)", "must not be 0"),
        ("States.ArrayRange(0, 1000, 1)", "more than 1000"),
        ("States.ArrayPartition($.a, 0)", "positive"),
        ("States.ArrayGetItem($.a, -1)", "negative"),
    ],
)
def test_check_refuses(text: str, fragment: str) -> None:
    message = check_intrinsic(text)
    assert message is not None
    assert fragment in message


@pytest.mark.parametrize(
    "text",
    [
        "States.Format('{} {}', $.a, States.UUID())",
        "States.Format($.template, $.a)",
        "States.Format(States.JsonToString($.a))",
        "States.ArrayRange(0, 999, 1)",
        "States.ArrayRange(1.0, 3, 1)",
        "States.MathAdd(1.5, -2)",
        "States.MathRandom(1, 10, 42)",
        "States.JsonMerge($.a, $.b, false)",
        "States.JsonMerge($.a, $.b, $.deep)",
        "States.Hash($.a, 'SHA-384')",
        "States.Hash($.a, $.algorithm)",
        "States.ArrayLength(States.StringSplit($.s, ','))",
        "States.JsonToString('literal is fine')",
        "States.Array( )",
    ],
)
def test_check_accepts(text: str) -> None:
    assert check_intrinsic(text) is None


# ------------------------------------------------------------------------------------ functions
class TestFormat:
    def test_values_render_like_aws(self) -> None:
        data = {
            "s": "text",
            "n": None,
            "i": 1,
            "f": 1.1,
            "t": True,
            "o": {"Arg1": 1, "Arg2": []},
            "l": [1, "a", None],
        }
        text = "States.Format('{}|{}|{}|{}|{}|{}|{}', $.s, $.n, $.i, $.f, $.t, $.o, $.l)"
        assert ev(text, data) == "text|null|1|1.1|true|{Arg1=1, Arg2=[]}|[1, a, null]"

    def test_floats_print_as_java_doubles(self) -> None:
        assert ev("States.Format('{} {} {} {}', 2.0, 1e20, 0.0001, -1.5e-7)") == "2.0 1.0E20 1.0E-4 -1.5E-7"

    def test_template_from_a_path(self) -> None:
        data = {"template": "Hello, my name is {}.", "name": "Arnav"}
        assert ev("States.Format($.template, $.name)", data) == "Hello, my name is Arnav."

    def test_template_from_a_variable(self) -> None:
        assert ev("States.Format($t, 'Pikachu')", variables={"t": "It's {}!"}) == "It's Pikachu!"

    def test_escaped_braces_are_not_placeholders(self) -> None:
        assert ev(r"States.Format('\{{}\}', 'x')") == "{x}"

    def test_placeholder_count_mismatch_at_run_time(self) -> None:
        cause = failure("States.Format($.t, 1, 2)", {"t": "only {}"})
        assert "States.Format" in cause
        assert "1 placeholder(s)" in cause

    def test_template_must_be_a_string(self) -> None:
        assert "must be a string" in failure("States.Format($.t)", {"t": 5})


class TestJson:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("", None),
            (" \n\t", None),
            ("null", None),
            ("-0", 0),
            ("1.1", 1.1),
            ("true", True),
            ('"HelloWorld"', "HelloWorld"),
            ('{"Arg1": 1, "Arg2": []}', {"Arg1": 1, "Arg2": []}),
        ],
    )
    def test_string_to_json(self, text: str, expected: Any) -> None:
        assert json_equal(ev("States.StringToJson($.s)", {"s": text}), expected)

    @pytest.mark.parametrize("text", ["{", "NaN", "Infinity", "[1,]", "1e999", "{'a': 1}", "[" * 100_000])
    def test_string_to_json_rejects_invalid_json(self, text: str) -> None:
        assert "not valid JSON" in failure("States.StringToJson($.s)", {"s": text})

    def test_string_to_json_needs_a_string(self) -> None:
        assert "must be a string" in failure("States.StringToJson($.s)", {"s": {"a": 1}})

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (None, "null"),
            (0, "0"),
            (1.1, "1.1"),
            (True, "true"),
            ("HelloWorld", '"HelloWorld"'),
            ([1, 2, "HelloWorld"], '[1,2,"HelloWorld"]'),
            ({"Arg1": 1, "Arg2": []}, '{"Arg1":1,"Arg2":[]}'),
            ('é\u0001"\\', '"é\\u0001\\"\\\\"'),
        ],
    )
    def test_json_to_string(self, value: Any, expected: str) -> None:
        assert ev("States.JsonToString($.v)", {"v": value}) == expected

    def test_json_merge_is_shallow_and_right_wins(self) -> None:
        data = {"a": {"x": {"a1": 1}, "b": 2, "d": 3}, "b": {"x": {"a3": 1}, "c": 3, "d": 4}}
        assert ev("States.JsonMerge($.a, $.b, false)", data) == {"x": {"a3": 1}, "b": 2, "d": 4, "c": 3}
        assert data["a"] == {"x": {"a1": 1}, "b": 2, "d": 3}  # inputs untouched

    def test_json_merge_refuses_deep_merge_at_run_time(self) -> None:
        assert "shallow" in failure("States.JsonMerge($.a, $.a, $.deep)", {"a": {}, "deep": True})

    @pytest.mark.parametrize(
        ("data", "fragment"),
        [
            ({"a": [], "b": {}, "deep": False}, "first argument must be a JSON object"),
            ({"a": {}, "b": "x", "deep": False}, "second argument must be a JSON object"),
            ({"a": {}, "b": {}, "deep": "false"}, "third argument must be a boolean"),
        ],
    )
    def test_json_merge_argument_types(self, data: dict[str, Any], fragment: str) -> None:
        assert fragment in failure("States.JsonMerge($.a, $.b, $.deep)", data)


class TestArrays:
    def test_array_keeps_values_and_order(self) -> None:
        data = {"o": {"k": [1]}, "n": None}
        assert ev("States.Array($.o, $.n, 'x', 7)", data) == [{"k": [1]}, None, "x", 7]

    @pytest.mark.parametrize(
        ("items", "size", "expected"),
        [
            ([], 3, []),
            ([0, 1, 2, 3], 3, [[0, 1, 2], [3]]),
            ([0, 1], 5, [[0, 1]]),
            ([1, 2, 3, 4, 5], 2.0, [[1, 2], [3, 4], [5]]),
        ],
    )
    def test_partition(self, items: list[Any], size: float, expected: list[Any]) -> None:
        assert ev("States.ArrayPartition($.a, $.n)", {"a": items, "n": size}) == expected

    @pytest.mark.parametrize(
        ("size", "fragment"), [(0, "positive"), (-2, "positive"), (1.5, "integer"), ("2", "integer")]
    )
    def test_partition_bad_size(self, size: Any, fragment: str) -> None:
        assert fragment in failure("States.ArrayPartition($.a, $.n)", {"a": [1], "n": size})

    @pytest.mark.parametrize(
        ("items", "value", "expected"),
        [
            ([[1, 2, 3], 2], [1, 2, 3], True),
            ([{"1": 2, "2": []}], {"2": [], "1": 2}, True),
            ([True, False], False, True),
            ([1, 2], True, False),
            ([True], 1, False),
            ([1.0], 1, True),
            ([None], None, True),
            ([], None, False),
            (["1"], 1, False),
        ],
    )
    def test_contains(self, items: list[Any], value: Any, expected: bool) -> None:
        assert ev("States.ArrayContains($.a, $.v)", {"a": items, "v": value}) is expected

    @pytest.mark.parametrize(
        ("args", "expected"),
        [
            ("0, 9, 3", [0, 3, 6, 9]),
            ("0, 10, 3", [0, 3, 6, 9]),
            ("1, 9, 9", [1]),
            ("9, 1, -2", [9, 7, 5, 3, 1]),
            ("1, 9, -1", []),
            ("5, 5, 1", [5]),
            ("0, 999, 1", list(range(1000))),
        ],
    )
    def test_range(self, args: str, expected: list[int]) -> None:
        assert ev(f"States.ArrayRange({args})") == expected

    @pytest.mark.parametrize(
        ("data", "fragment"),
        [
            ({"s": 0, "e": 1000, "st": 1}, "at most 1000"),
            ({"s": 0, "e": 10, "st": 0}, "must not be 0"),
            ({"s": 0.5, "e": 10, "st": 1}, "first argument must be an integer"),
            ({"s": 0, "e": "10", "st": 1}, "second argument must be an integer"),
        ],
    )
    def test_range_errors(self, data: dict[str, Any], fragment: str) -> None:
        assert fragment in failure("States.ArrayRange($.s, $.e, $.st)", data)

    def test_get_item(self) -> None:
        assert ev("States.ArrayGetItem($.a, $.i)", {"a": [1, 2, 3, 4, 5, 6, 7, 8, 9], "i": 5}) == 6
        assert ev("States.ArrayGetItem($.a, 0)", {"a": [{"x": 1}]}) == {"x": 1}

    @pytest.mark.parametrize(
        ("index", "fragment"), [(3, "out of bounds"), (-1, "negative"), (True, "integer")]
    )
    def test_get_item_errors(self, index: Any, fragment: str) -> None:
        assert fragment in failure("States.ArrayGetItem($.a, $.i)", {"a": [1, 2, 3], "i": index})

    def test_length(self) -> None:
        assert ev("States.ArrayLength($.a)", {"a": [None, [], {}, 1]}) == 4
        assert ev("States.ArrayLength($.a)", {"a": []}) == 0

    @pytest.mark.parametrize("fn", ["ArrayLength", "ArrayUnique"])
    @pytest.mark.parametrize("value", ["abc", {"a": 1}, None, 3])
    def test_array_functions_need_arrays(self, fn: str, value: Any) -> None:
        assert "must be an array" in failure(f"States.{fn}($.a)", {"a": value})

    def test_unique_keeps_first_occurrences_in_order(self) -> None:
        items = [1, 2, 2, 3, 3, 4, 1]
        assert ev("States.ArrayUnique($.a)", {"a": items}) == [1, 2, 3, 4]

    def test_unique_uses_json_equality(self) -> None:
        items = [True, 1, 1.0, "1", None, None, {"a": 1, "b": 2}, {"b": 2, "a": 1}, [1], [1]]
        assert ev("States.ArrayUnique($.a)", {"a": items}) == [True, 1, "1", None, {"a": 1, "b": 2}, [1]]


class TestEncoding:
    def test_base64_recorded_vectors(self) -> None:
        assert ev("States.Base64Encode('Data to encode')") == "RGF0YSB0byBlbmNvZGU="
        assert ev("States.Base64Decode('RGF0YSB0byBlbmNvZGU=')") == "Data to encode"
        assert ev("States.Base64Encode('')") == ""
        assert ev("States.Base64Decode('')") == ""

    def test_base64_uses_utf8(self) -> None:
        assert ev("States.Base64Encode('é')") == "w6k="
        assert ev("States.Base64Decode('w6k=')") == "é"

    def test_base64_decode_accepts_missing_padding(self) -> None:
        assert ev("States.Base64Decode('w6k')") == "é"

    @pytest.mark.parametrize("text", ["@@@@", "abc=d", "a", "ab=", "w6k=\n", "w6k==="])
    def test_base64_decode_rejects_invalid_input(self, text: str) -> None:
        assert "not valid Base64" in failure("States.Base64Decode($.s)", {"s": text})

    @pytest.mark.parametrize("fn", ["Base64Encode", "Base64Decode"])
    def test_base64_input_limit(self, fn: str) -> None:
        assert "at most 10000" in failure(f"States.{fn}($.s)", {"s": "A" * 10_004})
        assert isinstance(ev(f"States.{fn}($.s)", {"s": "AAAA" * 2_500}), str)

    @pytest.mark.parametrize("fn", ["Base64Encode", "Base64Decode"])
    def test_base64_needs_a_string(self, fn: str) -> None:
        assert "must be a string" in failure(f"States.{fn}($.s)", {"s": 12})

    @pytest.mark.parametrize(
        ("algorithm", "digest"),
        [
            ("MD5", "812f45842bc6d66ee14572ce20db8e86"),
            ("SHA-1", "aaff4a450a104cd177d28d18d74485e8cae074b7"),
            ("SHA-256", "b4a697a057313163aee33cd8d40c66e9f0f177e00cac2de32475ffff6169c3e3"),
        ],
    )
    def test_hash_recorded_vectors(self, algorithm: str, digest: str) -> None:
        assert ev(f"States.Hash('input data', '{algorithm}')") == digest

    def test_hash_of_empty_string(self) -> None:
        expected = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        assert ev("States.Hash('', 'SHA-256')") == expected

    @pytest.mark.parametrize(
        ("data", "fragment"),
        [
            ({"d": "x", "a": "SHA-3"}, "unknown hash algorithm"),
            ({"d": 1, "a": "MD5"}, "first argument must be a string"),
            ({"d": "x", "a": None}, "second argument must be a string"),
            ({"d": "x" * 10_001, "a": "MD5"}, "at most 10000"),
        ],
    )
    def test_hash_errors(self, data: dict[str, Any], fragment: str) -> None:
        assert fragment in failure("States.Hash($.d, $.a)", data)


class TestMath:
    @pytest.mark.parametrize(
        ("a", "b", "expected"),
        [
            (-9, 3, -6),
            (1.49, 1.5, 3),
            (1.5, 1.51, 4),
            (-1.49, -1.5, -2),
            (-1.5, -1.51, -3),
            (-2.5, 0, -2),
            (2.5, 0, 3),
            (-0.5, 0, 0),
            (-0.5, 0.5, 1),
            (0.49999999999999994, 0, 0),
            (2147483647, 0, 2147483647),
        ],
    )
    def test_add_rounds_half_up(self, a: float, b: float, expected: int) -> None:
        result = ev("States.MathAdd($.a, $.b)", {"a": a, "b": b})
        assert result == expected
        assert isinstance(result, int)

    def test_add_with_nested_calls(self) -> None:
        assert ev("States.MathAdd(States.ArrayLength($.a), -1)", {"a": [1, 2, 3]}) == 2

    @pytest.mark.parametrize(
        ("a", "b", "fragment"),
        [
            ("1", 1, "first argument must be a number"),
            (1, None, "second argument must be a number"),
            (True, 1, "must be a number"),
            (2147483648, 0, "outside the range"),
            (-2147483649, 0, "outside the range"),
        ],
    )
    def test_add_errors(self, a: Any, b: Any, fragment: str) -> None:
        assert fragment in failure("States.MathAdd($.a, $.b)", {"a": a, "b": b})

    def test_random_uses_the_injected_generator(self) -> None:
        first = [ev("States.MathRandom(0, 1000000)", rng=random.Random(5)) for _ in range(3)]
        assert len(set(first)) == 1
        rng = random.Random(5)
        sequence = [ev("States.MathRandom(0, 1000000)", rng=rng) for _ in range(5)]
        assert len(set(sequence)) > 1

    def test_seeded_random_is_deterministic_and_ignores_the_generator(self) -> None:
        results = {ev("States.MathRandom(0, 999, 3)", rng=random.Random(n)) for n in range(10)}
        assert len(results) == 1
        assert len({ev(f"States.MathRandom(0, 1000000, {seed})") for seed in range(5)}) > 1

    def test_random_does_not_touch_global_randomness(self) -> None:
        state = random.getstate()
        ev("States.MathRandom(1, 10)")
        ev("States.MathRandom(1, 10, 7)")
        assert random.getstate() == state

    def test_random_rounds_bounds(self) -> None:
        values = {ev("States.MathRandom(12.5, 14.4, $.s)", {"s": s}) for s in range(50)}
        assert values <= {13, 14}

    @pytest.mark.parametrize(
        ("args", "fragment"),
        [
            ("5, 5", "greater than the start"),
            ("6, 5", "greater than the start"),
            ("'1', 5", "must be a number"),
            ("1, 5, 'seed'", "must be a number"),
        ],
    )
    def test_random_errors(self, args: str, fragment: str) -> None:
        # '1' and 'seed' are refused by the static check; at run time they still fail cleanly
        assert fragment in failure(f"States.MathRandom({args})")


class TestStrings:
    @pytest.mark.parametrize(
        ("text", "delimiter", "expected"),
        [
            (" ", ",", [" "]),
            (" , ", ",", [" ", " "]),
            (", , ,", ",", [" ", " "]),
            (",,,,", ",", []),
            ("1,2,3,4,5", ",", ["1", "2", "3", "4", "5"]),
            ("This.is+a,test=string", ".+,=", ["This", "is", "a", "test", "string"]),
            ("split on T and \nnew line", "T\n", ["split on ", " and ", "new line"]),
            ("a-b", "", ["a-b"]),
            ("", ",", []),
            ("a]b\\c^d", "]\\^", ["a", "b", "c", "d"]),
        ],
    )
    def test_split(self, text: str, delimiter: str, expected: list[str]) -> None:
        assert ev("States.StringSplit($.t, $.d)", {"t": text, "d": delimiter}) == expected

    @pytest.mark.parametrize(
        ("data", "which"), [({"t": 1, "d": ","}, "first"), ({"t": "a", "d": None}, "second")]
    )
    def test_split_needs_strings(self, data: dict[str, Any], which: str) -> None:
        assert f"{which} argument must be a string" in failure("States.StringSplit($.t, $.d)", data)

    def test_uuid_comes_from_the_injected_source(self) -> None:
        counter = iter(range(10))
        result = evaluate_intrinsic(
            "States.Array(States.UUID(), States.UUID())",
            resolver(),
            random.Random(0),
            lambda: f"uuid-{next(counter)}",
        )
        assert result == ["uuid-0", "uuid-1"]


# ----------------------------------------------------------------------------------- properties
SAFE_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300)
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | SAFE_TEXT
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=25,
)


@given(SAFE_TEXT)
def test_base64_round_trip(text: str) -> None:
    encoded = ev("States.Base64Encode($.s)", {"s": text})
    assert base64.b64decode(encoded, validate=True).decode("utf-8") == text
    assert ev("States.Base64Decode($.s)", {"s": encoded}) == text


@given(JSON_VALUES)
def test_string_to_json_inverts_json_to_string(value: Any) -> None:
    text = ev("States.JsonToString($.v)", {"v": value})
    assert json_equal(json.loads(text), value)
    assert json_equal(ev("States.StringToJson($.t)", {"t": text}), value)
    nested = ev("States.StringToJson(States.JsonToString($.v))", {"v": value})
    assert json_equal(nested, value)


PRINTABLE = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=30)
NO_FLOATS = st.recursive(
    st.none() | st.booleans() | st.integers() | PRINTABLE,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(PRINTABLE, inner, max_size=4),
    max_leaves=15,
)


@given(NO_FLOATS)
def test_json_to_string_is_compact_json(value: Any) -> None:
    expected = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    assert ev("States.JsonToString($.v)", {"v": value}) == expected


@given(st.lists(JSON_SCALARS, max_size=40), st.integers(min_value=1, max_value=50))
def test_partition_concatenates_back_to_the_input(items: list[Any], size: int) -> None:
    chunks = ev("States.ArrayPartition($.a, $.n)", {"a": items, "n": size})
    assert json_equal([x for chunk in chunks for x in chunk], items)
    assert all(len(chunk) == size for chunk in chunks[:-1])
    assert all(1 <= len(chunk) <= size for chunk in chunks)
    assert len(chunks) == math.ceil(len(items) / size)


@given(
    st.integers(min_value=-3000, max_value=3000),
    st.integers(min_value=-3000, max_value=3000),
    st.integers(min_value=-100, max_value=100).filter(lambda n: n != 0),
)
def test_range_matches_an_inclusive_python_range(start: int, end: int, step: int) -> None:
    expected = list(range(start, end + (1 if step > 0 else -1), step))
    data = {"s": start, "e": end, "st": step}
    if len(expected) > 1000:
        assert "at most 1000" in failure("States.ArrayRange($.s, $.e, $.st)", data)
    else:
        assert ev("States.ArrayRange($.s, $.e, $.st)", data) == expected


UNIQUE_ITEMS = st.lists(
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.sampled_from(["a", "b", ""])
    | st.lists(st.integers(0, 1), max_size=2),
    max_size=30,
)


@given(UNIQUE_ITEMS)
def test_unique_is_idempotent_and_loses_nothing(items: list[Any]) -> None:
    once = ev("States.ArrayUnique($.a)", {"a": items})
    assert ev("States.ArrayUnique($.a)", {"a": once}) == once
    rendered = [json.dumps(v) for v in once]
    assert len(rendered) == len(set(rendered))
    assert {json.dumps(v) for v in items} == set(rendered)
    for item in items:
        assert ev("States.ArrayContains($.a, $.v)", {"a": once, "v": item}) is True


@given(SAFE_TEXT.filter(lambda s: "{}" not in s))
def test_format_without_placeholders_is_identity(text: str) -> None:
    assert ev("States.Format($.t)", {"t": text}) == text


@given(SAFE_TEXT)
def test_format_of_an_escaped_literal_is_the_text(text: str) -> None:
    expression = f"States.Format({literal(text)})"
    assert check_intrinsic(expression) is None
    assert ev(expression) == text


@given(st.lists(SAFE_TEXT, min_size=1, max_size=5))
def test_format_fills_placeholders_in_order(pieces: list[str]) -> None:
    expression = (
        "States.Format('" + "{}" * len(pieces) + "'" + "".join(f", {literal(p)}" for p in pieces) + ")"
    )
    assert ev(expression) == "".join(pieces)


@given(SAFE_TEXT, st.text(alphabet=",;.- \n", min_size=1, max_size=3))
def test_split_pieces_are_the_text_without_delimiters(text: str, delimiters: str) -> None:
    pieces = ev("States.StringSplit($.t, $.d)", {"t": text, "d": delimiters})
    assert all(piece and not set(piece) & set(delimiters) for piece in pieces)
    assert "".join(pieces) == "".join(c for c in text if c not in delimiters)


@given(st.integers(-(2**31), 2**31 - 1), st.integers(-(2**31), 2**31 - 1))
def test_add_of_integers_is_their_sum(a: int, b: int) -> None:
    assert ev("States.MathAdd($.a, $.b)", {"a": a, "b": b}) == a + b


@given(st.integers(-(10**6), 10**6))
def test_add_rounds_halves_upward(n: int) -> None:
    assert ev("States.MathAdd($.a, 0)", {"a": n + 0.5}) == n + 1
    assert ev("States.MathAdd($.a, 0)", {"a": n + 0.25}) == n


@given(st.integers(-(10**6), 10**6), st.integers(1, 10**6), st.integers(), st.integers())
def test_random_stays_in_range_and_seed_decides(start: int, width: int, seed: int, other: int) -> None:
    end = start + width
    data = {"s": start, "e": end, "seed": seed}
    value = ev("States.MathRandom($.s, $.e)", data, rng=random.Random(other))
    assert start <= value < end
    seeded = ev("States.MathRandom($.s, $.e, $.seed)", data, rng=random.Random(other))
    assert seeded == ev("States.MathRandom($.s, $.e, $.seed)", data, rng=random.Random(other + 1))
    assert start <= seeded < end


GRAMMAR_SOUP = st.text(
    alphabet="States.FormatArrayRangeMathAdd()(,,'\\{}$$.[]@?* 0-1.5etruefalsenull\"", max_size=80
)


def _assert_only_own_errors(text: str) -> None:
    with contextlib.suppress(IntrinsicSyntaxError):
        parse_intrinsic(text)
    message = check_intrinsic(text)
    assert message is None or isinstance(message, str)
    with contextlib.suppress(StatesError, PathNotFound):
        ev(text, {"a": [1, 2], "s": "x"}, context={}, variables={})


@settings(max_examples=300)
@given(st.text(max_size=80))
def test_random_text_raises_only_syntax_errors(text: str) -> None:
    _assert_only_own_errors(text)
    _assert_only_own_errors("States." + text)


@settings(max_examples=500)
@given(GRAMMAR_SOUP)
def test_grammar_like_text_raises_only_own_errors(text: str) -> None:
    _assert_only_own_errors("States." + text)
    _assert_only_own_errors("States.Format(" + text)


FUNCTION_NAMES = [
    "Format", "StringToJson", "JsonToString", "Array", "ArrayPartition", "ArrayContains", "ArrayRange",
    "ArrayGetItem", "ArrayLength", "ArrayUnique", "Base64Encode", "Base64Decode", "Hash", "JsonMerge",
    "MathRandom", "MathAdd", "StringSplit", "UUID",
]  # fmt: skip


@settings(max_examples=400)
@given(st.sampled_from(FUNCTION_NAMES), st.lists(JSON_VALUES, max_size=4))
def test_any_argument_values_fail_cleanly(name: str, values: list[Any]) -> None:
    data = {f"v{i}": v for i, v in enumerate(values)}
    expression = f"States.{name}(" + ", ".join(f"$.v{i}" for i in range(len(values))) + ")"
    try:
        result = ev(expression, data)
    except StatesError as exc:
        assert exc.error == "States.IntrinsicFailure"
    else:
        json.dumps(result)  # a JSON value
