"""Static validation of definitions: one bad definition per rule, the AWS-recorded corpus, properties."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.asl.problems import Problem
from orchestrator.asl.validate import INTERNAL_ERROR, validate_definition, validate_text
from orchestrator.asl.validate._states import COMMON_FIELDS, SPECS

CORPUS = Path("/work/shared/conformance")
END: dict[str, Any] = {"Type": "Pass", "End": True}


def single(state: Any, *, name: str = "S", **top: Any) -> dict[str, Any]:
    """A machine whose only state is ``state``."""
    return {"StartAt": name, "States": {name: state}, **top}


def jsonata(definition: dict[str, Any]) -> dict[str, Any]:
    return {"QueryLanguage": "JSONata", **definition}


def rendered(problems: list[Problem]) -> str:
    return "\n".join(p.render("def.json") for p in problems) or "(no problems)"


def assert_reports(definition: Any, pointer: str, phrase: str, **kwargs: Any) -> list[Problem]:
    problems = validate_definition(definition, **kwargs)
    assert any(p.pointer == pointer and phrase.lower() in p.message.lower() for p in problems), (
        f"expected {pointer}: ...{phrase}... in\n{rendered(problems)}"
    )
    return problems


def assert_valid(definition: Any, **kwargs: Any) -> None:
    problems = validate_definition(definition, **kwargs)
    assert problems == [], rendered(problems)


# --------------------------------------------------------------------------------------------------
# JSON text


def test_syntax_error_reports_line_and_column() -> None:
    [problem] = validate_text('{\n  "StartAt": "A",\n  "States": {,}\n}')
    assert problem.pointer == ""
    assert "line 3, column 14" in problem.message
    assert problem.render("f.json").startswith("f.json:/: Invalid JSON")


@pytest.mark.parametrize("text", ["", " ", "not a definition", "{", "[1,]", '{"a": 1}}', "\ufeff{}"])
def test_garbage_text_is_one_problem(text: str) -> None:
    problems = validate_text(text)
    assert len(problems) == 1
    assert "Invalid JSON" in problems[0].message


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_not_json(constant: str) -> None:
    [problem] = validate_text(f'{{"StartAt": "S", "TimeoutSeconds": {constant}, "States": {{}}}}')
    assert constant in problem.message


def test_overlong_number_is_a_problem() -> None:
    [problem] = validate_text('{"StartAt": "S", "TimeoutSeconds": ' + "9" * 5000 + ', "States": {}}')
    assert problem.message.startswith("Invalid JSON")


def test_huge_integer_is_shown_without_crashing() -> None:
    assert_reports(single(END, TimeoutSeconds=10**5000), "/TimeoutSeconds", "a very large integer")


def test_repeated_key_is_reported_where_it_is() -> None:
    text = '{"StartAt": "S", "States": {"S": {"Type": "Pass", "End": true, "End": true}}}'
    [problem] = validate_text(text)
    assert problem.pointer == "/States/S/End"
    assert "more than once" in problem.message


def test_valid_text() -> None:
    assert validate_text(json.dumps(single(END))) == []


@pytest.mark.parametrize("value", [[], "x", 1, None, True])
def test_top_level_must_be_an_object(value: Any) -> None:
    assert_reports(value, "", "must be a JSON object")
    assert validate_text(json.dumps(value))[0].message.startswith("Definition must be a JSON object")


# --------------------------------------------------------------------------------------------------
# One bad definition per rule: (definition, pointer, key phrase of the message)

PASS_TO_B = {"Type": "Pass", "Next": "B"}
CHOICE = {"Type": "Choice", "Choices": [{"Variable": "$.x", "IsPresent": True, "Next": "B"}], "Default": "B"}

BAD: dict[str, tuple[Any, str, str]] = {
    # state machine
    "missing StartAt and States": ({}, "", "required in a state machine: States, StartAt"),
    "missing States": ({"StartAt": "S"}, "", "required in a state machine: States"),
    "unknown top-level field": ({**single(END), "Name": "x"}, "/Name", "not supported in a state machine"),
    "bad QueryLanguage": (single(END, QueryLanguage="JSONPATH"), "/QueryLanguage", "'JSONPath' or 'JSONata'"),
    "bad Version": (single(END, Version="2.0"), "/Version", "'1.0'"),
    "bad TimeoutSeconds": (single(END, TimeoutSeconds="60"), "/TimeoutSeconds", "must be an integer"),
    "empty Comment type": (single(END, Comment=1), "/Comment", "must be a string"),
    "States not an object": ({"StartAt": "S", "States": []}, "/States", "must be an object"),
    "States empty": ({"StartAt": "S", "States": {}}, "/States", "at least one state"),
    "StartAt names nothing": (
        {"StartAt": "X", "States": {"S": END}},
        "/StartAt",
        "not a state of this machine",
    ),
    "StartAt not a string": ({"StartAt": 1, "States": {"S": END}}, "/StartAt", "must be the name of a state"),
    # states in general
    "state not an object": (single([]), "/States/S", "state must be an object"),
    "missing Type": (single({"End": True}), "/States/S", "'Type' is required"),
    "unknown Type": (single({"Type": "Sleep", "End": True}), "/States/S/Type", "not a state type"),
    "unknown field": (
        single({"Type": "Pass", "End": True, "Resource": "x"}),
        "/States/S/Resource",
        "not supported in a Pass state",
    ),
    "Next and End": (
        {"StartAt": "S", "States": {"S": {"Type": "Pass", "Next": "B", "End": True}, "B": END}},
        "/States/S",
        "'Next' and 'End' are mutually exclusive",
    ),
    "neither Next nor End": (single({"Type": "Pass"}), "/States/S", "either 'Next' or \"End\": true"),
    "End false": (single({"Type": "Pass", "End": False}), "/States/S", "either 'Next' or"),
    "End not a boolean": (single({"Type": "Pass", "End": "true"}), "/States/S/End", "must be a boolean"),
    "Next names nothing": (
        {"StartAt": "S", "States": {"S": {"Type": "Pass", "Next": "Nope"}, "B": END}},
        "/States/S/Next",
        "'Nope' is not a state of this machine",
    ),
    "unreachable state": (
        {"StartAt": "S", "States": {"S": END, "B": END}},
        "/States/B",
        "not reachable from StartAt",
    ),
    "no terminal state": (
        {"StartAt": "S", "States": {"S": {"Type": "Pass", "Next": "S"}}},
        "/States",
        "No terminal state",
    ),
    "state name too long": (single(END, name="n" * 81), "/States/" + "n" * 81, "at most 80"),
    "empty state name": (single(END, name=""), "/States/", "must not be empty"),
    "state name with a control character": (single(END, name="a\nb"), "/States/a\nb", "control characters"),
    "duplicate state name across branches": (
        {
            "StartAt": "P",
            "States": {
                "P": {"Type": "Parallel", "Branches": [single(END, name="P")], "End": True},
            },
        },
        "/States/P/Branches/0/States/P",
        "Duplicate state name",
    ),
    "Succeed with Next": (
        {"StartAt": "S", "States": {"S": {"Type": "Succeed", "Next": "B"}, "B": END}},
        "/States/S/Next",
        "terminal state",
    ),
    "Fail with End": (single({"Type": "Fail", "End": True}), "/States/S/End", "terminal state"),
    "Comment not a string": (single({**END, "Comment": 5}), "/States/S/Comment", "must be a string"),
    "bad state QueryLanguage": (
        single({**END, "QueryLanguage": "XPath"}),
        "/States/S/QueryLanguage",
        "'JSONPath' or 'JSONata'",
    ),
    # Choice
    "Choice with End": (
        {"StartAt": "C", "States": {"C": {**CHOICE, "End": True}, "B": END}},
        "/States/C/End",
        "not supported in a Choice state",
    ),
    "Choice with Next": (
        {"StartAt": "C", "States": {"C": {**CHOICE, "Next": "B"}, "B": END}},
        "/States/C/Next",
        "names its targets in 'Choices' and 'Default'",
    ),
    "Choice without Choices": (
        {"StartAt": "C", "States": {"C": {"Type": "Choice", "Default": "B"}, "B": END}},
        "/States/C",
        "'Choices' is required",
    ),
    "Choice with empty Choices": (
        {"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": [], "Default": "B"}, "B": END}},
        "/States/C/Choices",
        "non-empty array",
    ),
    "Default names nothing": (
        {"StartAt": "C", "States": {"C": {**CHOICE, "Default": "Nope"}, "B": END}},
        "/States/C/Default",
        "not a state of this machine",
    ),
    "rule Next names nothing": (
        {
            "StartAt": "C",
            "States": {
                "C": {**CHOICE, "Choices": [{"Variable": "$.x", "IsNull": True, "Next": "Nope"}]},
                "B": END,
            },
        },
        "/States/C/Choices/0/Next",
        "not a state of this machine",
    ),
    "rule operand of the wrong type": (
        {
            "StartAt": "C",
            "States": {
                "C": {**CHOICE, "Choices": [{"Variable": "$.x", "NumericEquals": "1", "Next": "B"}]},
                "B": END,
            },
        },
        "/States/C/Choices/0/NumericEquals",
        "must be a number",
    ),
    "rule without Next": (
        {
            "StartAt": "C",
            "States": {"C": {**CHOICE, "Choices": [{"Variable": "$.x", "IsNull": True}]}, "B": END},
        },
        "/States/C/Choices/0",
        "must have the field 'Next'",
    ),
    "Variable rule in JSONata": (
        jsonata({"StartAt": "C", "States": {"C": CHOICE, "B": END}}),
        "/States/C/Choices/0",
        "must use 'Condition'",
    ),
    "Condition rule in JSONPath": (
        {
            "StartAt": "C",
            "States": {"C": {**CHOICE, "Choices": [{"Condition": "{% true %}", "Next": "B"}]}, "B": END},
        },
        "/States/C/Choices/0/Condition",
        "only supported in JSONata",
    ),
    "Condition not parsing": (
        jsonata(
            {
                "StartAt": "C",
                "States": {"C": {**CHOICE, "Choices": [{"Condition": "{% $x = %}", "Next": "B"}]}, "B": END},
            }
        ),
        "/States/C/Choices/0/Condition",
        "Invalid JSONata expression",
    ),
    "rule Assign with a bad variable name": (
        {
            "StartAt": "C",
            "States": {
                "C": {
                    **CHOICE,
                    "Choices": [{"Variable": "$.x", "IsNull": True, "Next": "B", "Assign": {"a b": 1}}],
                },
                "B": END,
            },
        },
        "/States/C/Choices/0/Assign/a b",
        "not a valid variable name",
    ),
    # Wait
    "Wait without a duration": (
        single({"Type": "Wait", "End": True}),
        "/States/S",
        "exactly one of: Seconds",
    ),
    "Wait with two durations": (
        single({"Type": "Wait", "Seconds": 1, "Timestamp": "2024-01-01T00:00:00Z", "End": True}),
        "/States/S",
        "Seconds, Timestamp are mutually exclusive",
    ),
    "negative Seconds": (
        single({"Type": "Wait", "Seconds": -1, "End": True}),
        "/States/S/Seconds",
        "between 0",
    ),
    "fractional Seconds": (
        single({"Type": "Wait", "Seconds": 1.5, "End": True}),
        "/States/S/Seconds",
        "integer",
    ),
    "Seconds too long": (
        single({"Type": "Wait", "Seconds": 100_000_000, "End": True}),
        "/States/S/Seconds",
        "between 0 and 99999999",
    ),
    "Seconds as a string": (
        single({"Type": "Wait", "Seconds": "10", "End": True}),
        "/States/S/Seconds",
        "integer",
    ),
    "Timestamp without a zone": (
        single({"Type": "Wait", "Timestamp": "2016-12-05T21:29:29", "End": True}),
        "/States/S/Timestamp",
        "RFC 3339",
    ),
    "Timestamp expression in JSONPath": (
        single({"Type": "Wait", "Timestamp": "{% '2016-03-14T01:59:00Z' %}", "End": True}),
        "/States/S/Timestamp",
        "RFC 3339",
    ),
    "SecondsPath not a reference path": (
        single({"Type": "Wait", "SecondsPath": "$.a[*]", "End": True}),
        "/States/S/SecondsPath",
        "reference path",
    ),
    "SecondsPath in JSONata": (
        jsonata(single({"Type": "Wait", "SecondsPath": "$.a", "End": True})),
        "/States/S/SecondsPath",
        "not supported in JSONata states; use 'Seconds' with a JSONata expression",
    ),
    "Seconds expression not parsing": (
        jsonata(single({"Type": "Wait", "Seconds": "{% $states.input. %}", "End": True})),
        "/States/S/Seconds",
        "Invalid JSONata expression",
    ),
    # Fail
    "Error and ErrorPath": (
        single({"Type": "Fail", "Error": "E", "ErrorPath": "$.e"}),
        "/States/S",
        "Error, ErrorPath are mutually exclusive",
    ),
    "Cause and CausePath": (
        single({"Type": "Fail", "Cause": "C", "CausePath": "$.c"}),
        "/States/S",
        "Cause, CausePath are mutually exclusive",
    ),
    "Fail with InputPath": (
        single({"Type": "Fail", "InputPath": "$"}),
        "/States/S/InputPath",
        "not supported",
    ),
    "ErrorPath with a wildcard": (
        single({"Type": "Fail", "ErrorPath": "$.errors[*]"}),
        "/States/S/ErrorPath",
        "reference path",
    ),
    "CausePath with a bad intrinsic": (
        single({"Type": "Fail", "CausePath": "States.NoSuchFunction($.x)"}),
        "/States/S/CausePath",
        "intrinsic function",
    ),
    "ErrorPath in JSONata": (
        jsonata(single({"Type": "Fail", "ErrorPath": "$.e"})),
        "/States/S/ErrorPath",
        "not supported in JSONata states",
    ),
    # Task
    "Task without Resource": (single({"Type": "Task", "End": True}), "/States/S", "'Resource' is required"),
    "Resource not a string": (
        single({"Type": "Task", "Resource": 1, "End": True}),
        "/States/S/Resource",
        "non-empty string",
    ),
    "unknown resource scheme": (
        single({"Type": "Task", "Resource": "https://example.com/run", "End": True}),
        "/States/S/Resource",
        "reflow:<name>, airflow:<dag>, airflow:<conn>/<dag>, phabricator:approval",
    ),
    "unknown optimized action": (
        single({"Type": "Task", "Resource": "arn:aws:states:::dynamodb:query", "End": True}),
        "/States/S/Resource",
        "offers deleteItem, getItem, putItem, updateItem",
    ),
    "unsupported integration pattern": (
        single({"Type": "Task", "Resource": "arn:aws:states:::dynamodb:getItem.sync", "End": True}),
        "/States/S/Resource",
        "does not support the '.sync' pattern",
    ),
    "unknown service": (
        single({"Type": "Task", "Resource": "arn:aws:states:::nosuch:doIt", "End": True}),
        "/States/S/Resource",
        "not a recognized service integration",
    ),
    "ARN of another service": (
        single({"Type": "Task", "Resource": "arn:aws:sqs:us-east-1:123456789012:queue", "End": True}),
        "/States/S/Resource",
        "a Task resource ARN names a Lambda function",
    ),
    "TimeoutSeconds zero": (
        single({"Type": "Task", "Resource": "reflow:x", "TimeoutSeconds": 0, "End": True}),
        "/States/S/TimeoutSeconds",
        "between 1 and 99999999",
    ),
    "TimeoutSeconds and TimeoutSecondsPath": (
        single(
            {
                "Type": "Task",
                "Resource": "reflow:x",
                "TimeoutSeconds": 5,
                "TimeoutSecondsPath": "$.t",
                "End": True,
            }
        ),
        "/States/S",
        "TimeoutSeconds, TimeoutSecondsPath are mutually exclusive",
    ),
    "HeartbeatSeconds and HeartbeatSecondsPath": (
        single(
            {
                "Type": "Task",
                "Resource": "reflow:x",
                "HeartbeatSeconds": 5,
                "HeartbeatSecondsPath": "$.h",
                "End": True,
            }
        ),
        "/States/S",
        "HeartbeatSeconds, HeartbeatSecondsPath are mutually exclusive",
    ),
    "heartbeat not below timeout": (
        single(
            {
                "Type": "Task",
                "Resource": "reflow:x",
                "TimeoutSeconds": 10,
                "HeartbeatSeconds": 10,
                "End": True,
            }
        ),
        "/States/S/HeartbeatSeconds",
        "must be smaller than 'TimeoutSeconds' (10)",
    ),
    "TimeoutSecondsPath with a filter": (
        single({"Type": "Task", "Resource": "reflow:x", "TimeoutSecondsPath": "$.t[?(@.a)]", "End": True}),
        "/States/S/TimeoutSecondsPath",
        "reference path",
    ),
    "Credentials not an object": (
        single({"Type": "Task", "Resource": "reflow:x", "Credentials": "role", "End": True}),
        "/States/S/Credentials",
        "must be an object",
    ),
    "Credentials without RoleArn": (
        single({"Type": "Task", "Resource": "reflow:x", "Credentials": {}, "End": True}),
        "/States/S/Credentials",
        "'RoleArn' is required",
    ),
    "Credentials with an unknown field": (
        single({"Type": "Task", "Resource": "reflow:x", "Credentials": {"Role": "r"}, "End": True}),
        "/States/S/Credentials/Role",
        "not supported in 'Credentials'",
    ),
    "Credentials RoleArn.$ in JSONata": (
        jsonata(
            single({"Type": "Task", "Resource": "reflow:x", "Credentials": {"RoleArn.$": "$.r"}, "End": True})
        ),
        "/States/S/Credentials/RoleArn.$",
        "not supported in 'Credentials'",
    ),
    "Parameters in JSONata": (
        jsonata(single({"Type": "Task", "Resource": "reflow:x", "Parameters": {}, "End": True})),
        "/States/S/Parameters",
        "use 'Arguments'",
    ),
    "Arguments in JSONPath": (
        single({"Type": "Task", "Resource": "reflow:x", "Arguments": {}, "End": True}),
        "/States/S/Arguments",
        "only supported in JSONata states",
    ),
    "Arguments not an object": (
        jsonata(single({"Type": "Task", "Resource": "reflow:x", "Arguments": [1], "End": True})),
        "/States/S/Arguments",
        "must be an object or a JSONata expression",
    ),
    "Output in JSONPath": (single({**END, "Output": {}}), "/States/S/Output", "only supported in JSONata"),
    # paths
    "InputPath not a path": (single({**END, "InputPath": "a.b"}), "/States/S/InputPath", "valid JSONPath"),
    "InputPath not a string": (single({**END, "InputPath": 3}), "/States/S/InputPath", "string or null"),
    "OutputPath unparsable": (
        single({**END, "OutputPath": "$.a[?("}),
        "/States/S/OutputPath",
        "valid JSONPath",
    ),
    "ResultPath into the context object": (
        single({**END, "ResultPath": "$$.Execution"}),
        "/States/S/ResultPath",
        "context object",
    ),
    "ResultPath into a variable": (
        single({**END, "ResultPath": "$x.y"}),
        "/States/S/ResultPath",
        "variables",
    ),
    "ResultPath with a wildcard": (
        single({**END, "ResultPath": "$.a[*]"}),
        "/States/S/ResultPath",
        "reference path",
    ),
    "Parameters not an object": (
        single({**END, "Parameters": "x"}),
        "/States/S/Parameters",
        "must be an object",
    ),
    "Parameters .$ not a path": (
        single({**END, "Parameters": {"a": {"b.$": "value"}}}),
        "/States/S/Parameters/a/b.$",
        "must be a valid JSONPath or a valid intrinsic function call",
    ),
    "Parameters .$ inside an array": (
        single({**END, "Parameters": {"list": [{"b.$": 5}]}}),
        "/States/S/Parameters/list/0/b.$",
        "must be a JSONPath or an intrinsic function call",
    ),
    "Parameters .$ with a bad intrinsic": (
        single({**END, "Parameters": {"a.$": "States.Format("}}),
        "/States/S/Parameters/a.$",
        "valid intrinsic function call",
    ),
    "Parameters key given twice": (
        single({**END, "Parameters": {"a": 1, "a.$": "$.a"}}),
        "/States/S/Parameters/a.$",
        "given twice",
    ),
    "ResultSelector .$ not a path": (
        single({"Type": "Task", "Resource": "reflow:x", "ResultSelector": {"a.$": "b"}, "End": True}),
        "/States/S/ResultSelector/a.$",
        "valid JSONPath",
    ),
    # Retry / Catch
    "Retry not an array": (
        single({"Type": "Task", "Resource": "reflow:x", "Retry": {}, "End": True}),
        "/States/S/Retry",
        "must be an array of retriers",
    ),
    "retrier without ErrorEquals": (
        single({"Type": "Task", "Resource": "reflow:x", "Retry": [{"MaxAttempts": 1}], "End": True}),
        "/States/S/Retry/0",
        "'ErrorEquals' is required",
    ),
    "empty ErrorEquals": (
        single({"Type": "Task", "Resource": "reflow:x", "Retry": [{"ErrorEquals": []}], "End": True}),
        "/States/S/Retry/0/ErrorEquals",
        "non-empty array",
    ),
    "error name not a string": (
        single({"Type": "Task", "Resource": "reflow:x", "Retry": [{"ErrorEquals": [1]}], "End": True}),
        "/States/S/Retry/0/ErrorEquals/0",
        "non-empty string",
    ),
    "States.ALL not alone": (
        single(
            {
                "Type": "Task",
                "Resource": "reflow:x",
                "Retry": [{"ErrorEquals": ["States.ALL", "E"]}],
                "End": True,
            }
        ),
        "/States/S/Retry/0/ErrorEquals",
        "must appear alone",
    ),
    "States.ALL not last": (
        single(
            {
                "Type": "Task",
                "Resource": "reflow:x",
                "Retry": [{"ErrorEquals": ["States.ALL"]}, {"ErrorEquals": ["E"]}],
                "End": True,
            }
        ),
        "/States/S/Retry/0",
        "must be the last one",
    ),
    "IntervalSeconds zero": (
        single(
            {
                "Type": "Task",
                "Resource": "reflow:x",
                "Retry": [{"ErrorEquals": ["E"], "IntervalSeconds": 0}],
                "End": True,
            }
        ),
        "/States/S/Retry/0/IntervalSeconds",
        "between 1 and 99999999",
    ),
    "MaxAttempts negative": (
        single(
            {
                "Type": "Task",
                "Resource": "reflow:x",
                "Retry": [{"ErrorEquals": ["E"], "MaxAttempts": -1}],
                "End": True,
            }
        ),
        "/States/S/Retry/0/MaxAttempts",
        "between 0",
    ),
    "BackoffRate below one": (
        single(
            {
                "Type": "Task",
                "Resource": "reflow:x",
                "Retry": [{"ErrorEquals": ["E"], "BackoffRate": 0.5}],
                "End": True,
            }
        ),
        "/States/S/Retry/0/BackoffRate",
        "greater than or equal to 1",
    ),
    "MaxDelaySeconds zero": (
        single(
            {
                "Type": "Task",
                "Resource": "reflow:x",
                "Retry": [{"ErrorEquals": ["E"], "MaxDelaySeconds": 0}],
                "End": True,
            }
        ),
        "/States/S/Retry/0/MaxDelaySeconds",
        "between 1 and 31622401",
    ),
    "bad JitterStrategy": (
        single(
            {
                "Type": "Task",
                "Resource": "reflow:x",
                "Retry": [{"ErrorEquals": ["E"], "JitterStrategy": "HALF"}],
                "End": True,
            }
        ),
        "/States/S/Retry/0/JitterStrategy",
        "'FULL' or 'NONE'",
    ),
    "unknown retrier field": (
        single(
            {
                "Type": "Task",
                "Resource": "reflow:x",
                "Retry": [{"ErrorEquals": ["E"], "Next": "S"}],
                "End": True,
            }
        ),
        "/States/S/Retry/0/Next",
        "not supported in a retrier",
    ),
    "catcher without Next": (
        single({"Type": "Task", "Resource": "reflow:x", "Catch": [{"ErrorEquals": ["E"]}], "End": True}),
        "/States/S/Catch/0",
        "'Next' is required in a catcher",
    ),
    "catcher Next names nothing": (
        single(
            {
                "Type": "Task",
                "Resource": "reflow:x",
                "Catch": [{"ErrorEquals": ["E"], "Next": "Nope"}],
                "End": True,
            }
        ),
        "/States/S/Catch/0/Next",
        "not a state of this machine",
    ),
    "catcher ResultPath with a wildcard": (
        {
            "StartAt": "S",
            "States": {
                "S": {
                    "Type": "Task",
                    "Resource": "reflow:x",
                    "Catch": [{"ErrorEquals": ["E"], "Next": "B", "ResultPath": "$..e"}],
                    "End": True,
                },
                "B": END,
            },
        },
        "/States/S/Catch/0/ResultPath",
        "reference path",
    ),
    "catcher ResultPath in JSONata": (
        jsonata(
            {
                "StartAt": "S",
                "States": {
                    "S": {
                        "Type": "Task",
                        "Resource": "reflow:x",
                        "Catch": [{"ErrorEquals": ["E"], "Next": "B", "ResultPath": "$.e"}],
                        "End": True,
                    },
                    "B": END,
                },
            }
        ),
        "/States/S/Catch/0/ResultPath",
        "not supported in a catcher in JSONata states",
    ),
    "catcher Output in JSONPath": (
        {
            "StartAt": "S",
            "States": {
                "S": {
                    "Type": "Task",
                    "Resource": "reflow:x",
                    "Catch": [{"ErrorEquals": ["E"], "Next": "B", "Output": {}}],
                    "End": True,
                },
                "B": END,
            },
        },
        "/States/S/Catch/0/Output",
        "not supported in a catcher in JSONPath states",
    ),
    "Catch in a Pass state": (
        single({**END, "Catch": [{"ErrorEquals": ["E"], "Next": "S"}]}),
        "/States/S/Catch",
        "not supported in a Pass state",
    ),
    # Assign
    "Assign not an object": (single({**END, "Assign": [1]}), "/States/S/Assign", "must be an object"),
    "variable name starting with a digit": (
        single({**END, "Assign": {"1x": 1}}),
        "/States/S/Assign/1x",
        "not a valid",
    ),
    "reserved variable name": (
        single({**END, "Assign": {"states": 1}}),
        "/States/S/Assign/states",
        "reserved",
    ),
    "Assign .$ not a path": (
        single({**END, "Assign": {"x.$": "value"}}),
        "/States/S/Assign/x.$",
        "valid JSONPath",
    ),
    "variable assigned twice": (
        single({**END, "Assign": {"x": 1, "x.$": "$.x"}}),
        "/States/S/Assign",
        "assigned twice",
    ),
    "Assign in a Succeed state": (
        single({"Type": "Succeed", "Assign": {}}),
        "/States/S/Assign",
        "not supported",
    ),
    # query languages and JSONata
    "JSONPath state in a JSONata machine": (
        jsonata(single({**END, "QueryLanguage": "JSONPath"})),
        "/States/S/QueryLanguage",
        "cannot be 'JSONPath' in a state machine whose QueryLanguage is 'JSONata'",
    ),
    "JSONPath state nested in a JSONata machine": (
        jsonata(
            single(
                {
                    "Type": "Parallel",
                    "Branches": [single({**END, "QueryLanguage": "JSONPath"}, name="X")],
                    "End": True,
                }
            )
        ),
        "/States/S/Branches/0/States/X/QueryLanguage",
        "cannot be 'JSONPath'",
    ),
    "invalid JSONata deep in Output": (
        jsonata(single({**END, "Output": {"a": [1, "{% $states.input[ %}"]}})),
        "/States/S/Output/a/1",
        "Invalid JSONata expression",
    ),
    "invalid JSONata in Assign": (
        jsonata(single({**END, "Assign": {"x": "{% ) %}"}})),
        "/States/S/Assign/x",
        "Invalid JSONata expression",
    ),
    "empty JSONata expression": (
        jsonata(single({**END, "Output": "{%  %}"})),
        "/States/S/Output",
        "Invalid JSONata",
    ),
    "InputPath in JSONata": (
        jsonata(single({**END, "InputPath": "$"})),
        "/States/S/InputPath",
        "$states.input",
    ),
    "Result in JSONata": (jsonata(single({**END, "Result": 1})), "/States/S/Result", "use 'Output'"),
    # Parallel
    "Parallel without Branches": (
        single({"Type": "Parallel", "End": True}),
        "/States/S",
        "'Branches' is required",
    ),
    "Parallel with empty Branches": (
        single({"Type": "Parallel", "Branches": [], "End": True}),
        "/States/S/Branches",
        "non-empty array",
    ),
    "branch not an object": (
        single({"Type": "Parallel", "Branches": ["x"], "End": True}),
        "/States/S/Branches/0",
        "must be an object with StartAt and States",
    ),
    "branch with an unknown field": (
        single({"Type": "Parallel", "Branches": [{**single(END, name="X"), "Version": "1.0"}], "End": True}),
        "/States/S/Branches/0/Version",
        "not supported in a Parallel branch",
    ),
    "problem inside a branch": (
        single(
            {
                "Type": "Parallel",
                "Branches": [{"StartAt": "X", "States": {"X": {"Type": "Pass", "Next": "S"}, "Y": END}}],
                "End": True,
            }
        ),
        "/States/S/Branches/0/States/X/Next",
        "'S' is not a state of this machine",
    ),
    "branch without StartAt": (
        single({"Type": "Parallel", "Branches": [{"States": {"X": END}}], "End": True}),
        "/States/S/Branches/0",
        "required in a Parallel branch: StartAt",
    ),
    # Map
    "Map without a processor": (
        single({"Type": "Map", "End": True}),
        "/States/S",
        "exactly one of: ItemProcessor",
    ),
    "Map with ItemProcessor and Iterator": (
        single(
            {
                "Type": "Map",
                "ItemProcessor": single(END, name="X"),
                "Iterator": single(END, name="Y"),
                "End": True,
            }
        ),
        "/States/S",
        "ItemProcessor, Iterator are mutually exclusive",
    ),
    "Items and ItemsPath": (
        single(
            {
                "Type": "Map",
                "ItemProcessor": single(END, name="X"),
                "Items": [],
                "ItemsPath": "$.a",
                "End": True,
            }
        ),
        "/States/S/Items",
        "only supported in JSONata states",
    ),
    "Items not an array": (
        jsonata(
            single({"Type": "Map", "ItemProcessor": single(END, name="X"), "Items": {"a": 1}, "End": True})
        ),
        "/States/S/Items",
        "must be an array or a JSONata expression",
    ),
    "ItemsPath with a slice": (
        single({"Type": "Map", "ItemProcessor": single(END, name="X"), "ItemsPath": "$.a[0:2]", "End": True}),
        "/States/S/ItemsPath",
        "reference path",
    ),
    "ItemSelector and Parameters": (
        single(
            {
                "Type": "Map",
                "Iterator": single(END, name="X"),
                "ItemSelector": {},
                "Parameters": {},
                "End": True,
            }
        ),
        "/States/S",
        "ItemSelector, Parameters are mutually exclusive",
    ),
    "bad processor Mode": (
        single(
            {
                "Type": "Map",
                "ItemProcessor": {**single(END, name="X"), "ProcessorConfig": {"Mode": "SERIAL"}},
                "End": True,
            }
        ),
        "/States/S/ItemProcessor/ProcessorConfig/Mode",
        "'INLINE' or 'DISTRIBUTED'",
    ),
    "bad ExecutionType": (
        single(
            {
                "Type": "Map",
                "ItemProcessor": {
                    **single(END, name="X"),
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "FAST"},
                },
                "End": True,
            }
        ),
        "/States/S/ItemProcessor/ProcessorConfig/ExecutionType",
        "'STANDARD' or 'EXPRESS'",
    ),
    "unknown ProcessorConfig field": (
        single(
            {
                "Type": "Map",
                "ItemProcessor": {**single(END, name="X"), "ProcessorConfig": {"Workers": 2}},
                "End": True,
            }
        ),
        "/States/S/ItemProcessor/ProcessorConfig/Workers",
        "not supported in 'ProcessorConfig'",
    ),
    "problem inside an item processor": (
        single({"Type": "Map", "ItemProcessor": {"StartAt": "Nope", "States": {"X": END}}, "End": True}),
        "/States/S/ItemProcessor/StartAt",
        "not a state of this machine",
    ),
    "negative MaxConcurrency": (
        single({"Type": "Map", "ItemProcessor": single(END, name="X"), "MaxConcurrency": -1, "End": True}),
        "/States/S/MaxConcurrency",
        "greater than or equal to 0",
    ),
    "MaxConcurrency and MaxConcurrencyPath": (
        single(
            {
                "Type": "Map",
                "ItemProcessor": single(END, name="X"),
                "MaxConcurrency": 1,
                "MaxConcurrencyPath": "$.m",
                "End": True,
            }
        ),
        "/States/S",
        "MaxConcurrency, MaxConcurrencyPath are mutually exclusive",
    ),
    "ToleratedFailurePercentage above 100": (
        single(
            {
                "Type": "Map",
                "ItemProcessor": single(END, name="X"),
                "ToleratedFailurePercentage": 101,
                "End": True,
            }
        ),
        "/States/S/ToleratedFailurePercentage",
        "between 0 and 100",
    ),
    "negative ToleratedFailureCount": (
        single(
            {"Type": "Map", "ItemProcessor": single(END, name="X"), "ToleratedFailureCount": -2, "End": True}
        ),
        "/States/S/ToleratedFailureCount",
        "greater than or equal to 0",
    ),
    "ToleratedFailureCountPath in JSONata": (
        jsonata(
            single(
                {
                    "Type": "Map",
                    "ItemProcessor": single(END, name="X"),
                    "ToleratedFailureCountPath": "$.c",
                    "End": True,
                }
            )
        ),
        "/States/S/ToleratedFailureCountPath",
        "use 'ToleratedFailureCount' with a JSONata expression",
    ),
    "Label too long": (
        single({"Type": "Map", "ItemProcessor": single(END, name="X"), "Label": "L" * 41, "End": True}),
        "/States/S/Label",
        "at most 40 characters",
    ),
    "ItemReader without Resource": (
        single(
            {
                "Type": "Map",
                "ItemProcessor": single(END, name="X"),
                "ItemReader": {"Parameters": {}},
                "End": True,
            }
        ),
        "/States/S/ItemReader",
        "'Resource' is required in 'ItemReader'",
    ),
    "ItemReader MaxItems zero": (
        single(
            {
                "Type": "Map",
                "ItemProcessor": single(END, name="X"),
                "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"MaxItems": 0}},
                "End": True,
            }
        ),
        "/States/S/ItemReader/ReaderConfig/MaxItems",
        "greater than or equal to 1",
    ),
    "ItemBatcher too many bytes": (
        single(
            {
                "Type": "Map",
                "ItemProcessor": single(END, name="X"),
                "ItemBatcher": {"MaxInputBytesPerBatch": 262_145},
                "End": True,
            }
        ),
        "/States/S/ItemBatcher/MaxInputBytesPerBatch",
        "between 1 and 262144",
    ),
    "ResultWriter unknown field": (
        single(
            {
                "Type": "Map",
                "ItemProcessor": single(END, name="X"),
                "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject", "Bucket": "b"},
                "End": True,
            }
        ),
        "/States/S/ResultWriter/Bucket",
        "not supported in 'ResultWriter'",
    ),
}


@pytest.mark.parametrize(("definition", "pointer", "phrase"), BAD.values(), ids=BAD.keys())
def test_each_rule_is_reported(definition: Any, pointer: str, phrase: str) -> None:
    assert_reports(definition, pointer, phrase)


# --------------------------------------------------------------------------------------------------
# What AWS accepts and the validator must too

GOOD: dict[str, Any] = {
    "smallest machine": single(END),
    "every top-level field": single(
        END, Comment="c", Version="1.0", TimeoutSeconds=60, QueryLanguage="JSONPath"
    ),
    "null paths": single({**END, "InputPath": None, "OutputPath": None, "ResultPath": None}),
    "context and variable paths": {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Assign": {"v": 1, "w.$": "$$.Execution.Id"}, "Next": "B"},
            "B": {
                "Type": "Pass",
                "InputPath": "$v",
                "Parameters": {"a.$": "$$.State.Name", "b.$": "$w", "c.$": "States.Format('{}', $.x)"},
                "OutputPath": "$$.Execution.Input",
                "End": True,
            },
        },
    },
    "Result keeps .$ keys literally": single({**END, "Result": {"a.$": "not a path"}}),
    "Choice with Default loop and a Fail": {
        "StartAt": "C",
        "States": {
            "C": {**CHOICE, "Default": "F"},
            "B": {"Type": "Wait", "Seconds": 0, "Next": "C"},
            "F": {"Type": "Fail", "Error": "E", "CausePath": "States.Format('{}', $.c)"},
        },
    },
    "Wait variants": {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Wait", "Timestamp": "2016-03-14T01:59:00.123456789+05:30", "Next": "B"},
            "B": {"Type": "Wait", "SecondsPath": "$$.Execution.Input.s", "Next": "C"},
            "C": {"Type": "Wait", "TimestampPath": "$t", "Next": "D"},
            "D": {"Type": "Wait", "Seconds": 99_999_999, "End": True},
        },
    },
    "Task with everything": {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Parameters": {"FunctionName": "f", "Payload": {"token.$": "$$.Task.Token"}},
                "ResultSelector": {"r.$": "$.Payload"},
                "ResultPath": "$.out",
                "TimeoutSeconds": 300,
                "HeartbeatSeconds": 60,
                "Credentials": {"RoleArn.$": "$.role"},
                "Retry": [
                    {
                        "ErrorEquals": ["States.Timeout"],
                        "IntervalSeconds": 2,
                        "MaxAttempts": 0,
                        "BackoffRate": 1,
                    },
                    {
                        "ErrorEquals": ["States.ALL"],
                        "MaxDelaySeconds": 10,
                        "JitterStrategy": "FULL",
                        "Comment": "",
                    },
                ],
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "F", "ResultPath": "$.error"}],
                "Next": "Done",
            },
            "F": {"Type": "Fail"},
            "Done": {"Type": "Succeed"},
        },
    },
    "JSONata machine": jsonata(
        {
            "StartAt": "T",
            "States": {
                "T": {
                    "Type": "Task",
                    "Resource": "airflow:conn/dag",
                    "Arguments": {"x": "{% $states.input.x %}"},
                    "Output": "{% $states.result %}",
                    "Assign": {"v": "{% $states.result.v %}"},
                    "TimeoutSeconds": "{% $timeout %}",
                    "HeartbeatSeconds": 5,
                    "Credentials": {"RoleArn": "{% $role %}"},
                    "Catch": [
                        {"ErrorEquals": ["States.ALL"], "Next": "C", "Output": "{% $states.errorOutput %}"}
                    ],
                    "Next": "C",
                },
                "C": {
                    "Type": "Choice",
                    "Choices": [
                        {"Condition": "{% $v > 1 %}", "Next": "M", "Output": {"a": 1}, "Assign": {"w": 2}}
                    ],
                    "Default": "W",
                },
                "W": {"Type": "Wait", "Seconds": "{% $v %}", "Next": "M"},
                "M": {
                    "Type": "Map",
                    "Items": "{% [1, 2] %}",
                    "ItemSelector": {"value": "{% $states.context.Map.Item.Value %}"},
                    "MaxConcurrency": "{% 1 %}",
                    "ToleratedFailurePercentage": 0.5,
                    "ItemProcessor": single(
                        {"Type": "Pass", "Output": "{% $states.input %}", "End": True}, name="P"
                    ),
                    "Next": "F",
                },
                "F": {"Type": "Fail", "Error": "{% 'E' %}", "Cause": "{% $string($v) %}"},
            },
        }
    ),
    "JSONata state in a JSONPath machine": single({**END, "QueryLanguage": "JSONata", "Output": "{% 1 %}"}),
    "JSONPath machine keeps {% %} literally": single({**END, "Result": "{% not jsonata ) %}"}),
    "distributed Map": single(
        {
            "Type": "Map",
            "ItemReader": {
                "Resource": "arn:aws:states:::s3:getObject",
                "ReaderConfig": {"InputType": "CSV", "MaxItemsPath": "$.max"},
                "Parameters": {"Bucket.$": "$.bucket", "Key": "k"},
            },
            "ItemBatcher": {"MaxItemsPerBatch": 10, "BatchInput": {"f.$": "$.f"}},
            "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "b"}},
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
                "StartAt": "P",
                "States": {"P": END},
            },
            "ItemSelector": {"item.$": "$$.Map.Item.Value"},
            "MaxConcurrencyPath": "$.m",
            "ToleratedFailureCountPath": "$.c",
            "Label": "Files",
            "End": True,
        }
    ),
    "Parallel with branches": single(
        {
            "Type": "Parallel",
            "Branches": [single(END, name="A", Comment="a"), single({"Type": "Succeed"}, name="B")],
            "ResultSelector": {"a.$": "$[0]"},
            "End": True,
        }
    ),
}


@pytest.mark.parametrize("definition", GOOD.values(), ids=GOOD.keys())
def test_valid_definitions(definition: Any) -> None:
    assert_valid(definition)


@pytest.mark.parametrize(
    "resource",
    [
        "reflow:build-docs",
        "airflow:nightly_etl",
        "airflow:prod_conn/nightly_etl",
        "phabricator:approval",
        "arn:aws:lambda:us-east-1:123456789012:function:my-fn",
        "arn:aws:lambda:us-east-1:123456789012:function:my-fn:$LATEST",
        "arn:aws:states:us-east-1:123456789012:activity:approve",
        "arn:aws:states:::lambda:invoke",
        "arn:aws:states:::dynamodb:putItem",
        "arn:aws:states:::states:startExecution.sync:2",
        "arn:aws:states:::ecs:runTask.sync",
        "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "arn:aws:states:::aws-sdk:dynamodb:query",
        "arn:aws:states:::aws-sdk:s3:listObjectsV2.waitForTaskToken",
        "arn:aws-cn:states:::sns:publish",
    ],
)
def test_accepted_resources(resource: str) -> None:
    assert_valid(single({"Type": "Task", "Resource": resource, "End": True}))


@pytest.mark.parametrize(
    "resource",
    [
        "reflow:",
        "airflow:a/b/c",
        "airflow:",
        "phabricator:review",
        "arn:aws:states:::aws-sdk:s3:getObject.sync",
        "arn:aws:lambda:us-east-1:123456789012:layer:x",
        "arn:aws",
    ],
)
def test_refused_resources(resource: str) -> None:
    assert_reports(
        single({"Type": "Task", "Resource": resource, "End": True}), "/States/S/Resource", resource
    )


@pytest.mark.parametrize(
    "resource",
    ["arn:aws:states:::states:startExecution.sync", "arn:aws:states:::sns:publish.waitForTaskToken"],
)
def test_express_machines_refuse_sync_and_callbacks(resource: str) -> None:
    definition = single({"Type": "Task", "Resource": resource, "End": True})
    assert_valid(definition)
    assert_reports(
        definition, "/States/S/Resource", "Express state machines do not support", machine_type="EXPRESS"
    )


def test_heartbeat_is_checked_against_the_default_timeout() -> None:
    task = {"Type": "Task", "Resource": "reflow:x", "HeartbeatSeconds": 99_999_999, "End": True}
    assert_reports(single(task), "/States/S/HeartbeatSeconds", "smaller than 'TimeoutSeconds' (99999999)")
    assert_valid(single({**task, "TimeoutSecondsPath": "$.t"}))


def test_every_problem_is_reported() -> None:
    definition = {
        "StartAt": "A",
        "Extra": 1,
        "States": {
            "A": {"Type": "Pass", "Next": "Missing"},
            "B": {"Type": "Wait", "Seconds": -5, "End": True},
            "C": {"Type": "Task", "Resource": "ftp://x", "End": True, "Retry": [{"ErrorEquals": []}]},
        },
    }
    pointers = sorted(p.pointer for p in validate_definition(definition))
    assert pointers == [
        "/Extra",
        "/States/A/Next",
        "/States/B",
        "/States/B/Seconds",
        "/States/C",
        "/States/C/Resource",
        "/States/C/Retry/0/ErrorEquals",
    ]


def test_problems_render_as_file_pointer_message() -> None:
    [problem] = validate_definition(single({"Type": "Wait", "Seconds": "10", "End": True}))
    assert problem.render("flow.asl.json") == (
        "flow.asl.json:/States/S/Seconds: 'Seconds' must be an integer between 0 and 99999999, got '10'"
    )


def test_pointers_escape_slashes_and_tildes() -> None:
    assert_reports(single({"Type": "Pass"}, name="a/b~c"), "/States/a~1b~0c", "either 'Next'")


# --------------------------------------------------------------------------------------------------
# The AWS-recorded corpus


def _corpus_cases() -> list[tuple[str, dict[str, Any]]]:
    if not CORPUS.is_dir():
        return []
    return [(f"{p.parent.name}/{p.stem}", json.loads(p.read_text())) for p in sorted(CORPUS.glob("*/*.json"))]


CASES = _corpus_cases()
VERDICTS = [(name, case) for name, case in CASES if case["expected"]["status"] in ("INVALID", "VALID")]
ACCEPTED = [(name, case) for name, case in CASES if case["expected"]["status"] not in ("INVALID", "VALID")]


def _text(case: dict[str, Any]) -> str:
    text = case.get("definition_text")
    return text if isinstance(text, str) else json.dumps(case["definition"])


def _machine_type(case: dict[str, Any]) -> Any:
    meta = case.get("meta", {})
    return (meta.get("validate_args") or {}).get("type") or meta.get("state_machine_type") or "STANDARD"


@pytest.mark.skipif(not CASES, reason=f"conformance corpus not found at {CORPUS}")
@pytest.mark.parametrize(("name", "case"), VERDICTS, ids=[name for name, _ in VERDICTS])
def test_agrees_with_aws_verdict(name: str, case: dict[str, Any]) -> None:
    problems = validate_text(_text(case), machine_type=_machine_type(case))
    if case["expected"]["status"] == "VALID":
        assert problems == [], rendered(problems)
    else:
        assert problems, f"AWS refused it: {case['expected'].get('message') or case['expected']}"


@pytest.mark.skipif(not CASES, reason=f"conformance corpus not found at {CORPUS}")
def test_no_false_positive_on_definitions_aws_ran() -> None:
    """Every SUCCEEDED/FAILED case was created by AWS: none may be reported invalid."""
    assert len(ACCEPTED) > 800
    false_positives = {
        name: rendered(problems)
        for name, case in ACCEPTED
        if (problems := validate_text(_text(case), machine_type=_machine_type(case)))
    }
    assert false_positives == {}


# --------------------------------------------------------------------------------------------------
# Properties: nothing escapes, whatever the input

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
# Every field any state type knows (either query language), and a few structural ones.
FIELDS = sorted(
    set().union(*(spec.both | spec.jsonpath | spec.jsonata for spec in SPECS.values()))
    | COMMON_FIELDS
    | {"Next", "End", "ProcessorConfig", "Unknown"}
)
NAMES = st.sampled_from(["A", "B", "C"])
TYPES = st.sampled_from(["Pass", "Task", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map", "Nope"])
LEAF = st.one_of(
    JSON,
    NAMES,
    st.sampled_from(
        ["$", "$.a", "$$.Map.Item.Value", "$v", "$.a[*]", "States.Format('{}', $.a)", "{% $x %}"]
    ),
    st.sampled_from(
        ["{% ) %}", "2024-01-01T00:00:00Z", "reflow:x", "arn:aws:states:::lambda:invoke", "JSONata"]
    ),
)


def _machines(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    values: st.SearchStrategy[Any] = LEAF
    if depth > 0:
        sub = _machines(depth - 1)
        values = st.one_of(
            LEAF,
            sub,
            st.lists(sub, max_size=2),
            st.lists(st.dictionaries(st.sampled_from(FIELDS), LEAF, max_size=4), max_size=2),
        )
    state = st.builds(
        lambda type_, rest: {"Type": type_, **rest},
        TYPES,
        st.dictionaries(st.sampled_from(FIELDS), values, max_size=6),
    )
    return st.builds(
        lambda start, states, top: {"StartAt": start, "States": states, **top},
        NAMES,
        st.dictionaries(NAMES, state, max_size=3),
        st.dictionaries(
            st.sampled_from(["Comment", "QueryLanguage", "TimeoutSeconds", "Version", "X"]), LEAF, max_size=2
        ),
    )


def _resolve(document: Any, pointer: str) -> None:
    """Follow an RFC 6901 pointer; fails (KeyError/IndexError/TypeError) if it leads nowhere."""
    node = document
    for raw in pointer.split("/")[1:]:
        token = raw.replace("~1", "/").replace("~0", "~")
        node = node[int(token)] if isinstance(node, list) else node[token]


def _check_result(problems: Any) -> None:
    assert isinstance(problems, list)
    for problem in problems:
        assert isinstance(problem, Problem)
        assert isinstance(problem.pointer, str) and isinstance(problem.message, str) and problem.message
        assert INTERNAL_ERROR not in problem.message, problem.message


@settings(max_examples=400, deadline=None)
@given(JSON)
def test_random_json_never_raises(value: Any) -> None:
    _check_result(validate_definition(value))
    _check_result(validate_text(json.dumps(value)))


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_random_text_never_raises(text: str) -> None:
    _check_result(validate_text(text))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_machines(2), st.sampled_from(["STANDARD", "EXPRESS"]))
def test_random_machines_never_raise_and_point_into_the_definition(
    definition: Any, machine_type: Any
) -> None:
    problems = validate_definition(definition, machine_type=machine_type)
    _check_result(problems)
    for problem in problems:
        _resolve(definition, problem.pointer)


def test_deep_nesting_is_a_problem_not_a_crash() -> None:
    deep: Any = {"StartAt": "S", "States": {"S": {**END, "Parameters": {}}}}
    node = deep["States"]["S"]["Parameters"]
    for _ in range(5000):
        node["a"] = {}
        node = node["a"]
    _check_result(validate_definition(deep))
    _check_result(validate_text("[" * 100_000 + "]" * 100_000))
