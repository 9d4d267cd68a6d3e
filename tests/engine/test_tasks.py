"""Task states driven by mocks: results, errors, Retry, Catch, timeouts, tokens, payload limits.

Behaviour follows the AWS Step Functions documentation ("Handling errors in Step Functions workflows",
the Task state and Retry/Catch references) and the histories AWS records for failing and caught
tasks. The clock is simulated: retry back-offs show in the history's timestamps, not in wall time.
"""

from __future__ import annotations

import json
from datetime import datetime
from itertools import pairwise
from typing import Any

import pytest

from orchestrator.engine.interpreter import Execution, ExecutionInfo, Limits
from orchestrator.engine.local import MISSING_MOCK, Mocks, run_local

T0 = 1_700_000_000.0
LAMBDA = "arn:aws:states:::lambda:invoke"


def run(definition: dict[str, Any], input_value: Any = None, mocks: Any = None, **kw: Any) -> dict[str, Any]:
    kw.setdefault("seed", 7)
    return run_local(
        definition, input_value, mocks=mocks, history=True, validate=False, clock=lambda: T0, **kw
    )


def task_machine(task: dict[str, Any], *extra_states: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    """A machine whose start state is the Task ``T`` (End unless the task says Next)."""
    state = {"Type": "Task", "Resource": LAMBDA, **task}
    if "Next" not in state:
        state["End"] = True
    return {"StartAt": "T", "States": {"T": state, **dict(extra_states)}}


def types(result: dict[str, Any]) -> list[str]:
    return [e["type"] for e in result["history"]]


def details(event: dict[str, Any]) -> dict[str, Any]:
    found = [v for k, v in event.items() if k.endswith("EventDetails")]
    return found[0] if found else {}


def of_type(result: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in result["history"] if e["type"] == kind]


def seconds(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp() - T0


def throw(error: str, cause: str = "") -> dict[str, Any]:
    return {"Throw": {"Error": error, "Cause": cause}}


def ok(value: Any) -> dict[str, Any]:
    return {"Return": value}


# ---------------------------------------------------------------------------------------- success
def test_task_result_becomes_the_output_and_history_has_the_task_events() -> None:
    result = run(task_machine({}), {"a": 1}, {"T": ok({"b": 2})})
    assert result["status"] == "SUCCEEDED"
    assert result["output"] == {"b": 2}
    assert types(result) == [
        "ExecutionStarted",
        "TaskStateEntered",
        "TaskScheduled",
        "TaskStarted",
        "TaskSucceeded",
        "TaskStateExited",
        "ExecutionSucceeded",
    ]
    scheduled = details(of_type(result, "TaskScheduled")[0])
    assert scheduled == {
        "resourceType": "lambda",
        "resource": "invoke",
        "region": "us-east-1",
        "parameters": '{"a":1}',
    }
    assert details(of_type(result, "TaskStarted")[0]) == {"resourceType": "lambda", "resource": "invoke"}
    succeeded = details(of_type(result, "TaskSucceeded")[0])
    assert json.loads(succeeded["output"]) == {"b": 2}


@pytest.mark.parametrize(
    ("resource", "resource_type", "name"),
    [
        ("arn:aws:states:::lambda:invoke", "lambda", "invoke"),
        ("arn:aws:states:::lambda:invoke.waitForTaskToken", "lambda", "invoke.waitForTaskToken"),
        ("arn:aws:states:::aws-sdk:s3:getObject", "aws-sdk:s3", "getObject"),
        ("arn:aws:states:::states:startExecution.sync:2", "states", "startExecution.sync:2"),
        (
            "arn:aws:lambda:us-east-1:123456789012:function:f",
            "lambda",
            "arn:aws:lambda:us-east-1:123456789012:function:f",
        ),
        ("reflow:net", "reflow", "net"),
    ],
)
def test_task_events_name_the_resource_as_aws_does(resource: str, resource_type: str, name: str) -> None:
    result = run(task_machine({"Resource": resource}), {}, {"T": ok(1)})
    for kind in ("TaskScheduled", "TaskStarted", "TaskSucceeded"):
        d = details(of_type(result, kind)[0])
        assert (d["resourceType"], d["resource"]) == (resource_type, name)


def test_input_path_and_parameters_shape_what_the_task_receives() -> None:
    definition = task_machine(
        {
            "InputPath": "$.order",
            "Parameters": {
                "id.$": "$.id",
                "fixed": 1,
                "name.$": "$$.State.Name",
                "n.$": "States.MathAdd($.id, 1)",
            },
        }
    )
    result = run(definition, {"order": {"id": 41}, "other": True}, {"T": ok("done")})
    assert json.loads(details(of_type(result, "TaskScheduled")[0])["parameters"]) == {
        "id": 41,
        "fixed": 1,
        "name": "T",
        "n": 42,
    }


def test_result_selector_then_result_path_then_output_path() -> None:
    definition = task_machine(
        {
            "ResultSelector": {"code.$": "$.StatusCode", "body.$": "States.StringToJson($.Payload)"},
            "ResultPath": "$.result",
            "OutputPath": "$.result",
        }
    )
    mocks = {"T": ok({"StatusCode": 200, "Payload": '{"x": [1, 2]}', "ExecutedVersion": "$LATEST"})}
    result = run(definition, {"keep": 1}, mocks)
    assert result["output"] == {"code": 200, "body": {"x": [1, 2]}}


def test_result_selector_with_a_missing_path_fails_with_states_runtime() -> None:
    result = run(task_machine({"ResultSelector": {"x.$": "$.missing"}}), {}, {"T": ok({"a": 1})})
    assert result["status"] == "FAILED"
    assert result["error"] == "States.Runtime"
    assert "The JSONPath '$.missing' specified for the field 'x.$' could not be found" in result["cause"]
    assert result["cause"].startswith(
        "An error occurred while executing the state 'T' (entered at the event id #2)."
    )


def test_result_path_null_keeps_the_input_and_result_path_merges() -> None:
    keep = run(task_machine({"ResultPath": None}), {"a": 1}, {"T": ok({"b": 2})})
    assert keep["output"] == {"a": 1}
    merged = run(task_machine({"ResultPath": "$.r.s"}), {"a": 1}, {"T": ok({"b": 2})})
    assert merged["output"] == {"a": 1, "r": {"s": {"b": 2}}}


def test_result_path_into_a_non_object_is_a_result_path_match_failure() -> None:
    result = run(task_machine({"ResultPath": "$.a.b"}), {"a": 5}, {"T": ok(1)})
    assert result["status"] == "FAILED"
    assert result["error"] == "States.ResultPathMatchFailure"


# ---------------------------------------------------------------------------------------- failures
def test_uncaught_task_error_fails_the_execution_right_after_task_failed() -> None:
    result = run(task_machine({}), {}, {"T": throw("Lambda.Unknown", "it broke")})
    assert result["status"] == "FAILED"
    assert (result["error"], result["cause"]) == ("Lambda.Unknown", "it broke")
    assert types(result)[-2:] == ["TaskFailed", "ExecutionFailed"]
    assert details(of_type(result, "TaskFailed")[0]) == {
        "resourceType": "lambda",
        "resource": "invoke",
        "error": "Lambda.Unknown",
        "cause": "it broke",
    }
    assert "TaskStateExited" not in types(result)


def test_a_task_without_a_mock_fails_naming_the_state_and_its_resource() -> None:
    result = run(task_machine({}), {})
    assert result["status"] == "FAILED"
    assert result["error"] == MISSING_MOCK
    assert "'T'" in result["cause"]
    assert LAMBDA in result["cause"]


def test_mocks_by_resource_and_state_name_wins() -> None:
    definition = task_machine({"Next": "U"}, ("U", {"Type": "Task", "Resource": LAMBDA, "End": True}))
    result = run(definition, {}, {"T": ok("by name"), LAMBDA: ok("by resource")})
    outputs = [json.loads(details(e)["output"]) for e in of_type(result, "TaskSucceeded")]
    assert outputs == ["by name", "by resource"]


def test_a_mock_list_is_consumed_per_call_and_its_last_answer_repeats() -> None:
    definition = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "MaxConcurrency": 1,
                "ItemProcessor": {
                    "StartAt": "T",
                    "States": {"T": {"Type": "Task", "Resource": LAMBDA, "End": True}},
                },
                "End": True,
            }
        },
    }
    result = run(definition, [1, 2, 3, 4], {"T": [ok("a"), ok("b")]})
    assert result["output"] == ["a", "b", "b", "b"]


def test_a_mocks_object_starts_counting_afresh_for_every_run() -> None:
    mocks = Mocks.parse({"T": [throw("E"), ok("second")]})
    first = run(task_machine({}), {}, mocks)
    second = run(task_machine({}), {}, mocks)
    assert first["status"] == second["status"] == "FAILED"


# ---------------------------------------------------------------------------------------- Retry
def test_retry_backs_off_by_interval_times_backoff_rate_in_simulated_time() -> None:
    definition = task_machine(
        {"Retry": [{"ErrorEquals": ["Boom"], "IntervalSeconds": 3, "BackoffRate": 2.0, "MaxAttempts": 3}]}
    )
    result = run(definition, {}, {"T": [throw("Boom"), throw("Boom"), throw("Boom"), ok("fine")]})
    assert result["status"] == "SUCCEEDED"
    assert result["output"] == "fine"
    scheduled = [seconds(e) for e in of_type(result, "TaskScheduled")]
    assert scheduled == [0.0, 3.0, 9.0, 21.0]
    failed = [seconds(e) for e in of_type(result, "TaskFailed")]
    assert failed == [0.0, 3.0, 9.0]
    assert seconds(result["history"][-1]) == 21.0


def test_retry_defaults_are_one_second_rate_two_three_attempts() -> None:
    definition = task_machine({"Retry": [{"ErrorEquals": ["States.ALL"]}]})
    result = run(definition, {}, {"T": throw("Boom", "again")})
    assert result["status"] == "FAILED"
    assert (result["error"], result["cause"]) == ("Boom", "again")
    assert [seconds(e) for e in of_type(result, "TaskScheduled")] == [0.0, 1.0, 3.0, 7.0]


def test_a_retry_starts_again_at_task_scheduled_without_a_new_state_entered() -> None:
    definition = task_machine({"Retry": [{"ErrorEquals": ["Boom"], "MaxAttempts": 1}]})
    result = run(definition, {}, {"T": [throw("Boom"), ok(1)]})
    assert types(result) == [
        "ExecutionStarted",
        "TaskStateEntered",
        "TaskScheduled",
        "TaskStarted",
        "TaskFailed",
        "TaskScheduled",
        "TaskStarted",
        "TaskSucceeded",
        "TaskStateExited",
        "ExecutionSucceeded",
    ]


def test_max_attempts_zero_never_retries() -> None:
    definition = task_machine({"Retry": [{"ErrorEquals": ["Boom"], "MaxAttempts": 0}]})
    result = run(definition, {}, {"T": [throw("Boom"), ok(1)]})
    assert result["status"] == "FAILED"
    assert len(of_type(result, "TaskScheduled")) == 1


def test_max_delay_seconds_caps_the_back_off() -> None:
    retrier = {
        "ErrorEquals": ["Boom"],
        "IntervalSeconds": 10,
        "BackoffRate": 3,
        "MaxAttempts": 4,
        "MaxDelaySeconds": 20,
    }
    result = run(task_machine({"Retry": [retrier]}), {}, {"T": [throw("Boom")] * 4 + [ok(1)]})
    starts = [seconds(e) for e in of_type(result, "TaskScheduled")]
    assert [b - a for a, b in pairwise(starts)] == [10.0, 20.0, 20.0, 20.0]


def test_full_jitter_waits_a_random_part_of_the_back_off_reproducibly() -> None:
    retrier = {
        "ErrorEquals": ["Boom"],
        "IntervalSeconds": 100,
        "BackoffRate": 2,
        "MaxAttempts": 5,
        "JitterStrategy": "FULL",
    }
    definition = task_machine({"Retry": [retrier]})
    mocks = {"T": [throw("Boom")] * 5 + [ok(1)]}

    def delays(seed: int) -> list[float]:
        starts = [seconds(e) for e in of_type(run(definition, {}, mocks, seed=seed), "TaskScheduled")]
        return [b - a for a, b in pairwise(starts)]

    first = delays(1)
    assert len(first) == 5
    for attempt, delay in enumerate(first):
        assert 0 <= delay <= 100 * 2**attempt
    assert first != [100.0, 200.0, 400.0, 800.0, 1600.0]
    assert delays(1) == first  # same seed, same jitter
    assert delays(2) != first


def test_the_first_matching_retrier_decides_even_when_exhausted() -> None:
    retry = [{"ErrorEquals": ["Boom"], "MaxAttempts": 1}, {"ErrorEquals": ["States.ALL"], "MaxAttempts": 5}]
    result = run(task_machine({"Retry": retry}), {}, {"T": throw("Boom")})
    assert result["status"] == "FAILED"
    assert len(of_type(result, "TaskScheduled")) == 2


def test_each_retrier_counts_its_own_attempts() -> None:
    retry = [
        {"ErrorEquals": ["A"], "MaxAttempts": 1, "IntervalSeconds": 1},
        {"ErrorEquals": ["B"], "MaxAttempts": 1, "IntervalSeconds": 1},
    ]
    result = run(task_machine({"Retry": retry}), {}, {"T": [throw("A"), throw("B"), throw("A")]})
    assert result["status"] == "FAILED"
    assert result["error"] == "A"
    assert len(of_type(result, "TaskScheduled")) == 3


def test_state_retry_count_and_task_token_are_in_the_context_object() -> None:
    definition = task_machine(
        {
            "Parameters": {"retry.$": "$$.State.RetryCount", "token.$": "$$.Task.Token"},
            "Retry": [{"ErrorEquals": ["Boom"], "MaxAttempts": 2}],
        }
    )
    result = run(definition, {}, {"T": [throw("Boom"), throw("Boom"), ok(1)]})
    params = [json.loads(details(e)["parameters"]) for e in of_type(result, "TaskScheduled")]
    assert [p["retry"] for p in params] == [0, 1, 2]
    tokens = [p["token"] for p in params]
    assert all(isinstance(t, str) and t for t in tokens)
    assert len(set(tokens)) == 3  # every attempt has its own token


def test_the_task_token_is_the_id_of_the_pending_task() -> None:
    execution = Execution(task_machine({"Parameters": {"token.$": "$$.Task.Token"}}))
    execution.start({}, T0)
    (task,) = execution.pending_tasks()
    assert task.parameters == {"token": task.id}


# ---------------------------------------------------------------------------------------- Catch
def test_catch_with_result_path_records_task_state_exited_then_goes_to_next() -> None:
    definition = task_machine(
        {
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Handler"}],
            "Next": "Done",
        },
        ("Handler", {"Type": "Pass", "End": True}),
        ("Done", {"Type": "Succeed"}),
    )
    result = run(definition, {"in": 1}, {"T": throw("Exception", "boom")})
    assert result["status"] == "SUCCEEDED"
    assert result["output"] == {"in": 1, "error": {"Error": "Exception", "Cause": "boom"}}
    assert types(result)[4:8] == ["TaskFailed", "TaskStateExited", "PassStateEntered", "PassStateExited"]
    exited = details(of_type(result, "TaskStateExited")[0])
    assert exited["name"] == "T"
    assert json.loads(exited["output"]) == result["output"]


def test_catch_without_result_path_passes_the_error_output() -> None:
    definition = task_machine(
        {"Catch": [{"ErrorEquals": ["Exception"], "Next": "Handler"}]},
        ("Handler", {"Type": "Pass", "End": True}),
    )
    result = run(definition, {"in": 1}, {"T": throw("Exception", "boom")})
    assert result["output"] == {"Error": "Exception", "Cause": "boom"}


def test_retries_run_out_before_a_catcher_takes_the_error() -> None:
    definition = task_machine(
        {
            "Retry": [{"ErrorEquals": ["Boom"], "MaxAttempts": 2, "IntervalSeconds": 5}],
            "Catch": [{"ErrorEquals": ["Boom"], "ResultPath": None, "Next": "Handler"}],
        },
        ("Handler", {"Type": "Pass", "Result": "handled", "End": True}),
    )
    result = run(definition, {"x": 1}, {"T": throw("Boom")})
    assert result["output"] == "handled"
    assert len(of_type(result, "TaskFailed")) == 3
    assert seconds(of_type(result, "TaskStateExited")[0]) == 15.0


def test_catchers_are_tried_in_order_and_an_unmatched_error_fails() -> None:
    catch = [
        {"ErrorEquals": ["Other"], "Next": "A"},
        {"ErrorEquals": ["Boom", "Bang"], "Next": "B"},
        {"ErrorEquals": ["States.ALL"], "Next": "C"},
    ]
    states = [(n, {"Type": "Pass", "Result": n, "End": True}) for n in "ABC"]
    definition = task_machine({"Catch": catch}, *states)
    assert run(definition, {}, {"T": throw("Bang")})["output"] == "B"
    assert run(definition, {}, {"T": throw("Anything")})["output"] == "C"
    only = task_machine({"Catch": catch[:2]}, *states)
    assert run(only, {}, {"T": throw("Anything")})["status"] == "FAILED"


def test_catch_assign_sets_variables_for_the_next_state() -> None:
    definition = task_machine(
        {"Catch": [{"ErrorEquals": ["States.ALL"], "Assign": {"why.$": "$.Cause"}, "Next": "Handler"}]},
        ("Handler", {"Type": "Pass", "Parameters": {"why.$": "$why"}, "End": True}),
    )
    result = run(definition, {}, {"T": throw("E", "because")})
    assert result["output"] == {"why": "because"}
    exited = details(of_type(result, "TaskStateExited")[0])
    assert exited["assignedVariables"] == {"why": '"because"'}


# ---------------------------------------------------------------------------------------- error names
@pytest.mark.parametrize(
    ("error", "error_equals", "caught"),
    [
        ("Lambda.Unknown", "States.ALL", True),
        ("Lambda.Unknown", "States.TaskFailed", True),
        ("States.Permissions", "States.TaskFailed", True),
        ("States.Timeout", "States.TaskFailed", False),
        ("States.HeartbeatTimeout", "States.TaskFailed", False),
        ("States.Timeout", "States.Timeout", True),
        ("States.HeartbeatTimeout", "States.Timeout", True),
        ("States.HeartbeatTimeout", "States.HeartbeatTimeout", True),
        ("States.Timeout", "States.HeartbeatTimeout", False),
        ("States.Timeout", "States.ALL", True),
        ("lambda.unknown", "Lambda.Unknown", False),  # error names are case-sensitive
    ],
)
def test_error_name_matching(error: str, error_equals: str, caught: bool) -> None:
    definition = task_machine(
        {"Catch": [{"ErrorEquals": [error_equals], "Next": "Handler"}]},
        ("Handler", {"Type": "Pass", "End": True}),
    )
    result = run(definition, {}, {"T": throw(error, "c")})
    assert result["status"] == ("SUCCEEDED" if caught else "FAILED")
    if caught:
        # A timeout is reported by the timer, not by the task: its cause is empty.
        cause = "" if error in ("States.Timeout", "States.HeartbeatTimeout") else "c"
        assert result["output"] == {"Error": error, "Cause": cause}


def test_a_timeout_thrown_by_a_mock_is_reported_as_task_timed_out() -> None:
    result = run(task_machine({"TimeoutSeconds": 5}), {}, {"T": throw("States.Timeout")})
    assert result["status"] == "FAILED"
    assert result["error"] == "States.Timeout"
    timed_out = of_type(result, "TaskTimedOut")
    assert len(timed_out) == 1
    assert details(timed_out[0]) == {
        "resourceType": "lambda",
        "resource": "invoke",
        "error": "States.Timeout",
    }
    assert details(of_type(result, "TaskScheduled")[0])["timeoutInSeconds"] == 5


def test_task_failed_wildcard_does_not_take_a_states_runtime_error_of_the_state_itself() -> None:
    # A Parameters path that selects nothing is States.Runtime: never retried, never caught, even when named.
    definition = task_machine(
        {
            "Parameters": {"x.$": "$.nope"},
            "Retry": [{"ErrorEquals": ["States.ALL"]}, {"ErrorEquals": ["States.Runtime"]}],
            "Catch": [
                {"ErrorEquals": ["States.Runtime"], "Next": "H"},
                {"ErrorEquals": ["States.ALL"], "Next": "H"},
            ],
        },
        ("H", {"Type": "Pass", "End": True}),
    )
    result = run(definition, {"a": 1}, {"T": ok(1)})
    assert result["status"] == "FAILED"
    assert result["error"] == "States.Runtime"
    assert result["cause"] == (
        "An error occurred while executing the state 'T' (entered at the event id #2). The JSONPath '$.nope' "
        "specified for the field 'x.$' could not be found in the input '{\"a\":1}'"
    )
    assert types(result) == ["ExecutionStarted", "TaskStateEntered", "ExecutionFailed"]


def test_an_intrinsic_failure_in_parameters_can_be_caught() -> None:
    definition = task_machine(
        {
            "Parameters": {"x.$": "States.StringToJson($.text)"},
            "Catch": [{"ErrorEquals": ["States.IntrinsicFailure"], "Next": "H"}],
        },
        ("H", {"Type": "Pass", "End": True}),
    )
    result = run(definition, {"text": "{not json"}, {"T": ok(1)})
    assert result["status"] == "SUCCEEDED"
    assert result["output"]["Error"] == "States.IntrinsicFailure"
    assert "TaskScheduled" not in types(result)


# ---------------------------------------------------------------------------------------- timeouts
def test_timeout_and_heartbeat_are_announced_in_task_scheduled() -> None:
    definition = task_machine({"TimeoutSecondsPath": "$.t", "HeartbeatSeconds": 10})
    result = run(definition, {"t": 60}, {"T": ok(1)})
    scheduled = details(of_type(result, "TaskScheduled")[0])
    assert (scheduled["timeoutInSeconds"], scheduled["heartbeatInSeconds"]) == (60, 10)


def test_timeout_seconds_path_must_select_a_positive_integer() -> None:
    result = run(task_machine({"TimeoutSecondsPath": "$.t"}), {"t": "soon"}, {"T": ok(1)})
    assert result["status"] == "FAILED"
    assert result["error"] == "States.Runtime"


def test_task_timed_out_by_the_driver_with_heartbeat_is_a_heartbeat_timeout() -> None:
    definition = task_machine(
        {"HeartbeatSeconds": 5, "Catch": [{"ErrorEquals": ["States.HeartbeatTimeout"], "Next": "H"}]},
        ("H", {"Type": "Pass", "End": True}),
    )
    execution = Execution(definition)
    execution.start({}, T0)
    (task,) = execution.pending_tasks()
    assert task.heartbeat_seconds == 5
    execution.task_started(task.id, T0 + 1)
    execution.task_timed_out(task.id, T0 + 6, heartbeat=True)
    assert execution.status == "SUCCEEDED"
    assert execution.output == {"Error": "States.HeartbeatTimeout", "Cause": ""}


def test_an_answered_task_cannot_be_answered_again() -> None:
    execution = Execution(task_machine({}))
    execution.start({}, T0)
    (task,) = execution.pending_tasks()
    execution.task_succeeded(task.id, 1, T0)
    with pytest.raises(KeyError):
        execution.task_succeeded(task.id, 2, T0)
    with pytest.raises(KeyError):
        execution.task_failed("no-such-task", "E", "", T0)


# ---------------------------------------------------------------------------------------- payload limit
def test_a_result_over_the_payload_limit_is_data_limit_exceeded_and_states_all_does_not_catch_it() -> None:
    big = "x" * (256 * 1024)
    definition = task_machine(
        {"Catch": [{"ErrorEquals": ["States.ALL"], "Next": "H"}]}, ("H", {"Type": "Pass", "End": True})
    )
    result = run(definition, {}, {"T": ok(big)})
    assert result["status"] == "FAILED"
    assert result["error"] == "States.DataLimitExceeded"
    assert "'T'" in result["cause"]


def test_data_limit_exceeded_is_caught_when_named() -> None:
    definition = task_machine(
        {"Catch": [{"ErrorEquals": ["States.DataLimitExceeded"], "Next": "H"}]},
        ("H", {"Type": "Pass", "End": True}),
    )
    result = run(definition, {}, {"T": ok("x" * 400)}, limits=Limits(payload_bytes=300))
    assert result["status"] == "SUCCEEDED"
    assert result["output"]["Error"] == "States.DataLimitExceeded"


def test_task_parameters_over_the_payload_limit_fail_before_scheduling() -> None:
    definition = task_machine({"Parameters": {"a.$": "$.s", "b.$": "$.s"}})
    result = run(definition, {"s": "y" * 40}, {"T": ok(1)}, limits=Limits(payload_bytes=60))
    assert result["status"] == "FAILED"
    assert result["error"] == "States.DataLimitExceeded"
    assert "TaskScheduled" not in types(result)


# ---------------------------------------------------------------------------------------- JSONata
def test_jsonata_task_arguments_output_assign_and_catch() -> None:
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": LAMBDA,
                "Arguments": {"n": "{% $states.input.n * 2 %}"},
                "Assign": {"seen": "{% $states.result.v %}"},
                "Output": {"v": "{% $states.result.v + 1 %}"},
                "Next": "U",
            },
            "U": {
                "Type": "Task",
                "Resource": LAMBDA,
                "Catch": [
                    {
                        "ErrorEquals": ["States.ALL"],
                        "Output": {"err": "{% $states.errorOutput.Error %}", "seen": "{% $seen %}"},
                        "Next": "Done",
                    }
                ],
                "End": True,
            },
            "Done": {"Type": "Succeed"},
        },
    }
    result = run(definition, {"n": 21}, {"T": ok({"v": 10}), "U": throw("Nope")})
    assert json.loads(details(of_type(result, "TaskScheduled")[0])["parameters"]) == {"n": 42}
    assert result["output"] == {"err": "Nope", "seen": 10}


# ---------------------------------------------------------------------------------------- parallel tasks
def test_a_failing_task_aborts_the_task_pending_in_a_sibling_branch() -> None:
    def branch(name: str) -> dict[str, Any]:
        return {"StartAt": name, "States": {name: {"Type": "Task", "Resource": LAMBDA, "End": True}}}

    definition = {
        "StartAt": "P",
        "States": {"P": {"Type": "Parallel", "Branches": [branch("A"), branch("B")], "End": True}},
    }
    result = run(definition, {}, {"A": throw("Boom", "a failed"), "B": ok("b")})
    assert result["status"] == "FAILED"
    assert (result["error"], result["cause"]) == ("Boom", "a failed")
    assert types(result)[-3:] == ["TaskStateAborted", "ParallelStateFailed", "ExecutionFailed"]
    assert "TaskSucceeded" not in types(result)


def test_the_execution_info_names_the_execution_in_the_context() -> None:
    definition = task_machine({"Parameters": {"id.$": "$$.Execution.Id", "sm.$": "$$.StateMachine.Name"}})
    result = run(definition, {}, {"T": ok(1)}, name="exec-1", state_machine_name="Orders")
    params = json.loads(details(of_type(result, "TaskScheduled")[0])["parameters"])
    assert params == {
        "id": ExecutionInfo(name="exec-1", state_machine_name="Orders").execution_arn,
        "sm": "Orders",
    }
