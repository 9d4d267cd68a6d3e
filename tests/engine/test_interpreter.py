"""The execution machine: Parallel, Map, Wait, timeouts, stop, payload limits, variables, context.

What the AWS-recorded conformance corpus does not pin down is checked here against the Step Functions
documentation: a failing Parallel branch aborts the others, Map concurrency and tolerated failures,
ItemBatcher, Wait on the simulated clock, the execution's TimeoutSeconds, StopExecution, the 256 KiB
payload limit, variable scopes, and determinism for a given definition, input, seed and clock.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.engine.events import HistoryEvent
from orchestrator.engine.interpreter import Execution, Limits
from orchestrator.engine.local import run_local
from orchestrator.errors import UsageError

T0 = 1_700_000_000.0
LAMBDA = "arn:aws:states:::lambda:invoke"


def run(definition: dict[str, Any], input_value: Any = None, mocks: Any = None, **kw: Any) -> dict[str, Any]:
    kw.setdefault("seed", 7)
    return run_local(
        definition, input_value, mocks=mocks, history=True, validate=False, clock=lambda: T0, **kw
    )


def types(result: dict[str, Any]) -> list[str]:
    return [e["type"] for e in result["history"]]


def of_type(result: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in result["history"] if e["type"] == kind]


def details(event: dict[str, Any]) -> dict[str, Any]:
    found = [v for k, v in event.items() if k.endswith("EventDetails")]
    return found[0] if found else {}


def seconds(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp() - T0


def machine(*states: tuple[str, dict[str, Any]], **top: Any) -> dict[str, Any]:
    return {"StartAt": states[0][0], "States": dict(states), **top}


def pass_(**fields: Any) -> dict[str, Any]:
    return {"Type": "Pass", "End": True, **fields} if "Next" not in fields else {"Type": "Pass", **fields}


def wait(seconds_: int, **fields: Any) -> dict[str, Any]:
    state = {"Type": "Wait", "Seconds": seconds_, **fields}
    if "Next" not in state:
        state["End"] = True
    return state


def task(**fields: Any) -> dict[str, Any]:
    state = {"Type": "Task", "Resource": LAMBDA, **fields}
    if "Next" not in state:
        state["End"] = True
    return state


def branch(*states: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {"StartAt": states[0][0], "States": dict(states)}


def throw(error: str, cause: str = "") -> dict[str, Any]:
    return {"Throw": {"Error": error, "Cause": cause}}


# ---------------------------------------------------------------------------------------- Parallel
def test_parallel_outputs_follow_branch_order_not_completion_order() -> None:
    definition = machine(
        (
            "P",
            {
                "Type": "Parallel",
                "Branches": [
                    branch(("Slow", wait(30, OutputPath="$.a"))),
                    branch(("Fast", pass_(Result="fast"))),
                ],
                "End": True,
            },
        )
    )
    result = run(definition, {"a": "slow"})
    assert result["output"] == ["slow", "fast"]
    assert seconds(result["history"][-1]) == 30.0


def test_a_failing_branch_aborts_the_others_and_its_error_fails_the_execution() -> None:
    definition = machine(
        (
            "P",
            {
                "Type": "Parallel",
                "Branches": [
                    branch(("W", wait(100))),
                    branch(
                        ("X", pass_(Next="F")),
                        ("F", {"Type": "Fail", "Error": "Branch.Broke", "Cause": "why"}),
                    ),
                ],
                "End": True,
            },
        )
    )
    result = run(definition, {})
    assert result["status"] == "FAILED"
    assert (result["error"], result["cause"]) == ("Branch.Broke", "why")
    assert types(result)[-4:] == [
        "FailStateEntered",
        "WaitStateAborted",
        "ParallelStateFailed",
        "ExecutionFailed",
    ]
    assert "WaitStateExited" not in types(result)
    assert seconds(result["history"][-1]) == 0.0  # the 100 s wait was abandoned


def test_catch_on_parallel_takes_the_branch_error_with_result_path() -> None:
    definition = machine(
        (
            "P",
            {
                "Type": "Parallel",
                "Branches": [branch(("F", {"Type": "Fail", "Error": "E", "Cause": "c"}))],
                "Catch": [{"ErrorEquals": ["E"], "ResultPath": "$.failure", "Next": "After"}],
                "End": True,
            },
        ),
        ("After", pass_()),
    )
    result = run(definition, {"x": 1})
    assert result["output"] == {"x": 1, "failure": {"Error": "E", "Cause": "c"}}
    assert types(result)[-5:] == [
        "ParallelStateFailed",
        "ParallelStateExited",
        "PassStateEntered",
        "PassStateExited",
        "ExecutionSucceeded",
    ]


def test_retry_on_parallel_runs_every_branch_again() -> None:
    definition = machine(
        (
            "P",
            {
                "Type": "Parallel",
                "Branches": [branch(("A", task())), branch(("B", task()))],
                "Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 2}],
                "End": True,
            },
        )
    )
    result = run(definition, {}, {"A": [throw("Flaky"), {"Return": "a"}], "B": {"Return": "b"}})
    assert result["output"] == ["a", "b"]
    started = of_type(result, "ParallelStateStarted")
    assert [seconds(e) for e in started] == [0.0, 2.0]
    assert "ParallelStateFailed" not in types(result)  # a retried failure is not the state failing


def test_parallel_result_selector_and_assign() -> None:
    definition = machine(
        (
            "P",
            {
                "Type": "Parallel",
                "Branches": [branch(("A", pass_(Result=1))), branch(("B", pass_(Result=2)))],
                "ResultSelector": {"first.$": "$[0]", "all.$": "$"},
                "Assign": {"second.$": "$.all[1]"},
                "Next": "Q",
            },
        ),
        ("Q", pass_(Parameters={"sel.$": "$", "v.$": "$second"})),
    )
    assert run(definition, {})["output"] == {"sel": {"first": 1, "all": [1, 2]}, "v": 2}


# ---------------------------------------------------------------------------------------- Map
def map_state(processor: dict[str, Any], **fields: Any) -> dict[str, Any]:
    state = {"Type": "Map", "ItemProcessor": processor, **fields}
    if "Next" not in state:
        state["End"] = True
    return state


@pytest.mark.parametrize(
    ("max_concurrency", "total"), [(0, 10.0), (1, 40.0), (2, 20.0), (3, 20.0), (4, 10.0)]
)
def test_map_max_concurrency_bounds_the_iterations_running_at_once(
    max_concurrency: int, total: float
) -> None:
    definition = machine(("M", map_state(branch(("W", wait(10))), MaxConcurrency=max_concurrency)))
    result = run(definition, [1, 2, 3, 4])
    assert result["output"] == [1, 2, 3, 4]
    assert seconds(result["history"][-1]) == total


def test_map_max_concurrency_path() -> None:
    definition = machine(
        ("M", map_state(branch(("W", wait(10))), MaxConcurrencyPath="$.n", ItemsPath="$.items"))
    )
    result = run(definition, {"n": 1, "items": [1, 2, 3]})
    assert seconds(result["history"][-1]) == 30.0


def test_a_failing_iteration_fails_the_map_and_aborts_running_iterations() -> None:
    processor = branch(("T", task()))
    definition = machine(("M", map_state(processor, MaxConcurrency=2)))
    mocks = {"T": [{"Return": 1}, throw("Item.Bad", "item 1"), {"Return": 3}]}
    result = run(definition, [1, 2, 3, 4], mocks)
    assert result["status"] == "FAILED"
    assert (result["error"], result["cause"]) == ("Item.Bad", "item 1")
    history = types(result)
    assert history.count("MapIterationStarted") == 3  # the 4th never starts
    assert history[-5:] == [
        "MapIterationFailed",
        "TaskStateAborted",
        "MapIterationAborted",
        "MapStateFailed",
        "ExecutionFailed",
    ]
    failed = details(of_type(result, "MapIterationFailed")[0])
    assert failed == {"name": "M", "index": 1}


def test_catch_on_map() -> None:
    processor = branch(("F", {"Type": "Fail", "Error": "Bad"}))
    definition = machine(
        ("M", map_state(processor, Catch=[{"ErrorEquals": ["Bad"], "Next": "H"}])), ("H", pass_())
    )
    result = run(definition, [1])
    assert result["output"] == {"Error": "Bad", "Cause": ""}
    assert types(result)[-5:] == [
        "MapStateFailed",
        "MapStateExited",
        "PassStateEntered",
        "PassStateExited",
        "ExecutionSucceeded",
    ]


def fail_odd() -> dict[str, Any]:
    return branch(
        (
            "C",
            {
                "Type": "Choice",
                "Choices": [{"Variable": "$.odd", "BooleanEquals": True, "Next": "F"}],
                "Default": "P",
            },
        ),
        ("F", {"Type": "Fail", "Error": "Odd", "Cause": "odd item"}),
        ("P", pass_(OutputPath="$.v")),
    )


def items(*odd: bool) -> list[dict[str, Any]]:
    return [{"v": i, "odd": o} for i, o in enumerate(odd)]


def test_tolerated_failure_count() -> None:
    definition = machine(("M", map_state(fail_odd(), ToleratedFailureCount=1)))
    ok = run(definition, items(False, True, False))
    assert ok["status"] == "SUCCEEDED"
    assert ok["output"] == [0, {"Error": "Odd", "Cause": "odd item"}, 2]
    too_many = run(definition, items(True, True, False))
    assert too_many["status"] == "FAILED"
    assert too_many["error"] == "States.ExceedToleratedFailureThreshold"


def test_tolerated_failure_percentage() -> None:
    definition = machine(("M", map_state(fail_odd(), ToleratedFailurePercentage=50)))
    assert run(definition, items(True, True, False, False))["status"] == "SUCCEEDED"
    failed = run(definition, items(True, True, True, False))
    assert failed["status"] == "FAILED"
    assert failed["error"] == "States.ExceedToleratedFailureThreshold"


def test_tolerated_failures_fail_when_either_threshold_is_exceeded() -> None:
    definition = machine(("M", map_state(fail_odd(), ToleratedFailureCount=3, ToleratedFailurePercentage=25)))
    # 2 of 4 failed: within the count, over the percentage.
    result = run(definition, items(True, True, False, False))
    assert result["error"] == "States.ExceedToleratedFailureThreshold"
    definition = machine(("M", map_state(fail_odd(), ToleratedFailureCount=1, ToleratedFailurePercentage=90)))
    # 2 of 4 failed: within the percentage, over the count.
    assert run(definition, items(True, True, False, False))["status"] == "FAILED"


def test_without_tolerance_the_first_failure_fails_the_map() -> None:
    result = run(machine(("M", map_state(fail_odd()))), items(False, True, False))
    assert (result["error"], result["cause"]) == ("Odd", "odd item")


def test_item_selector_sees_the_map_item_in_the_context_object() -> None:
    definition = machine(
        (
            "M",
            map_state(
                branch(("P", pass_())),
                ItemsPath="$.list",
                ItemSelector={
                    "index.$": "$$.Map.Item.Index",
                    "value.$": "$$.Map.Item.Value",
                    "tag.$": "$.tag",
                },
            ),
        )
    )
    result = run(definition, {"list": ["a", "b"], "tag": "t"})
    assert result["output"] == [
        {"index": 0, "value": "a", "tag": "t"},
        {"index": 1, "value": "b", "tag": "t"},
    ]


def test_item_batcher_groups_items_with_batch_input() -> None:
    definition = machine(
        (
            "M",
            map_state(
                branch(("P", pass_())),
                ItemBatcher={"MaxItemsPerBatch": 2, "BatchInput": {"job.$": "$.job"}},
                ItemsPath="$.items",
            ),
        )
    )
    result = run(definition, {"job": "j1", "items": [1, 2, 3, 4, 5]})
    assert result["output"] == [
        {"BatchInput": {"job": "j1"}, "Items": [1, 2]},
        {"BatchInput": {"job": "j1"}, "Items": [3, 4]},
        {"BatchInput": {"job": "j1"}, "Items": [5]},
    ]
    assert details(of_type(result, "MapStateStarted")[0]) == {"length": 3}


def test_item_batcher_by_bytes_and_item_selector_applies_to_each_item_first() -> None:
    definition = machine(
        (
            "M",
            map_state(
                branch(("P", pass_())),
                ItemSelector={"i.$": "$$.Map.Item.Index"},
                ItemBatcher={"MaxInputBytesPerBatch": 16},
            ),
        )
    )
    result = run(definition, ["a", "b", "c"])
    # Each selected item is {"i":N}: 7 bytes; two fit in 16 bytes, three do not.
    assert result["output"] == [{"Items": [{"i": 0}, {"i": 1}]}, {"Items": [{"i": 2}]}]


def test_item_batcher_in_jsonata() -> None:
    definition = machine(
        (
            "M",
            map_state(
                branch(("P", {"Type": "Pass", "End": True})),
                Items="{% $states.input.xs %}",
                ItemBatcher={
                    "MaxItemsPerBatch": "{% 1 + 1 %}",
                    "BatchInput": {"n": "{% $count($states.input.xs) %}"},
                },
            ),
        ),
        QueryLanguage="JSONata",
    )
    result = run(definition, {"xs": [1, 2, 3]})
    assert result["output"] == [
        {"BatchInput": {"n": 3}, "Items": [1, 2]},
        {"BatchInput": {"n": 3}, "Items": [3]},
    ]


def test_map_over_an_empty_array_succeeds_with_an_empty_array() -> None:
    result = run(machine(("M", map_state(branch(("P", pass_()))))), [])
    assert result["output"] == []
    assert types(result)[1:5] == ["MapStateEntered", "MapStateStarted", "MapStateSucceeded", "MapStateExited"]


def test_map_items_path_not_an_array_is_states_runtime() -> None:
    result = run(machine(("M", map_state(branch(("P", pass_())), ItemsPath="$.x"))), {"x": 5})
    assert result["error"] == "States.Runtime"
    assert "MapStateFailed" not in types(result)


def test_nested_map_in_parallel_failure_propagates_to_the_top() -> None:
    inner = branch(("M", map_state(branch(("F", {"Type": "Fail", "Error": "Deep"})))))
    # Branches start in order; the waiting one is running when the Map fails.
    definition = machine(
        ("P", {"Type": "Parallel", "Branches": [branch(("W", wait(5))), inner], "End": True})
    )
    result = run(definition, [1, 2])
    assert result["status"] == "FAILED"
    assert result["error"] == "Deep"
    assert types(result)[-5:] == [
        "MapIterationFailed",
        "MapStateFailed",
        "WaitStateAborted",
        "ParallelStateFailed",
        "ExecutionFailed",
    ]


# ---------------------------------------------------------------------------------------- Wait
def test_a_one_hour_wait_finishes_at_once_with_timestamps_an_hour_apart() -> None:
    definition = machine(("W", wait(3600, Next="After")), ("After", pass_()))
    started = time.monotonic()
    result = run(definition, {"k": 1})
    assert time.monotonic() - started < 1.0
    assert result["output"] == {"k": 1}
    entered, exited = of_type(result, "WaitStateEntered")[0], of_type(result, "WaitStateExited")[0]
    assert seconds(exited) - seconds(entered) == 3600.0
    assert entered["timestamp"] == "2023-11-14T22:13:20.000Z"
    assert exited["timestamp"] == "2023-11-14T23:13:20.000Z"


def test_timestamp_path_in_the_past_ends_the_wait_immediately() -> None:
    definition = machine(("W", {"Type": "Wait", "TimestampPath": "$.when", "End": True}))
    result = run(definition, {"when": "2001-01-01T00:00:00Z"})
    assert result["status"] == "SUCCEEDED"
    assert [seconds(e) for e in result["history"]] == [0.0, 0.0, 0.0, 0.0]


def test_timestamp_in_the_future_waits_until_then() -> None:
    definition = machine(("W", {"Type": "Wait", "Timestamp": "2023-11-15T00:00:00+01:00", "End": True}))
    result = run(definition, {})
    assert result["history"][-1]["timestamp"] == "2023-11-14T23:00:00.000Z"


def test_seconds_path_with_a_negative_value_fails() -> None:
    result = run(machine(("W", {"Type": "Wait", "SecondsPath": "$.s", "End": True})), {"s": -1})
    assert result["error"] == "States.Runtime"


def test_real_time_sleeps_through_the_wait() -> None:
    now = [T0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    result = run_local(
        machine(("W", wait(5))), {}, validate=False, real_time=True, clock=lambda: now[0], sleep=sleep
    )
    assert result["status"] == "SUCCEEDED"
    assert slept == [5.0]


# ---------------------------------------------------------------------------------------- timeouts, stop
def test_execution_timeout_seconds_times_the_execution_out() -> None:
    definition = machine(("W", wait(3600)), TimeoutSeconds=60)
    result = run(definition, {})
    assert result["status"] == "TIMED_OUT"
    assert result["error"] == "States.Timeout"
    last = result["history"][-1]
    assert last["type"] == "ExecutionTimedOut"
    assert seconds(last) == 60.0


def test_execution_timeout_while_a_task_is_pending() -> None:
    execution = Execution(machine(("T", task())), sink=None)
    execution.definition["TimeoutSeconds"] = 30
    execution.start({}, T0)
    assert len(execution.pending_tasks()) == 1
    assert execution.next_due() == T0 + 30
    execution.advance_to(T0 + 29)
    assert execution.status == "RUNNING"
    execution.advance_to(T0 + 30)
    assert execution.status == "TIMED_OUT"
    assert execution.pending_tasks() == []
    assert execution.next_due() is None


def test_stop_aborts_the_execution() -> None:
    events: list[HistoryEvent] = []
    execution = Execution(machine(("T", task())), sink=events.append)
    execution.start({}, T0)
    (pending,) = execution.pending_tasks()
    execution.stop("Operator.Stop", "no longer needed", T0 + 5)
    assert execution.status == "ABORTED"
    assert (execution.error, execution.cause) == ("Operator.Stop", "no longer needed")
    assert events[-1].type == "ExecutionAborted"
    assert events[-1].details == {"error": "Operator.Stop", "cause": "no longer needed"}
    assert events[-1].timestamp == T0 + 5
    assert execution.pending_tasks() == []
    assert execution.next_due() is None
    with pytest.raises(KeyError):
        execution.task_succeeded(pending.id, 1, T0 + 6)
    execution.stop(None, None, T0 + 7)  # stopping twice changes nothing
    assert len([e for e in events if e.type == "ExecutionAborted"]) == 1


def test_stop_without_error_or_cause() -> None:
    events: list[HistoryEvent] = []
    execution = Execution(machine(("W", wait(10))), sink=events.append)
    execution.start({}, T0)
    execution.stop(None, None, T0)
    assert events[-1].type == "ExecutionAborted"
    assert events[-1].details == {}


def test_advance_to_fires_timers_in_order_and_only_those_due() -> None:
    definition = machine(
        ("P", {"Type": "Parallel", "Branches": [branch(("A", wait(5))), branch(("B", wait(3)))], "End": True})
    )
    events: list[HistoryEvent] = []
    execution = Execution(definition, sink=events.append)
    execution.start({}, T0)
    assert execution.next_due() == T0 + 3
    execution.advance_to(T0 + 4)
    assert [e.type for e in events if e.type == "WaitStateExited"] == ["WaitStateExited"]
    assert execution.status == "RUNNING"
    execution.advance_to(T0 + 100)
    assert execution.status == "SUCCEEDED"
    assert events[-1].timestamp == T0 + 5  # the execution ended when its last timer fired


# ---------------------------------------------------------------------------------------- payload limit
def test_an_execution_input_over_256_kib_is_refused() -> None:
    with pytest.raises(UsageError, match="262144"):
        run(machine(("P", pass_())), {"s": "x" * (256 * 1024)})


def test_the_machine_fails_an_oversized_input_with_data_limit_exceeded() -> None:
    events: list[HistoryEvent] = []
    execution = Execution(machine(("P", pass_())), sink=events.append, limits=Limits(payload_bytes=10))
    execution.start({"s": "x" * 20}, T0)
    assert execution.status == "FAILED"
    assert execution.error == "States.DataLimitExceeded"
    assert [e.type for e in events] == ["ExecutionStarted", "ExecutionFailed"]


def test_a_state_output_over_the_limit_is_data_limit_exceeded() -> None:
    definition = machine(("P", pass_(Parameters={"a.$": "$.s", "b.$": "$.s", "c.$": "$.s"})))
    half = "x" * (100 * 1024)
    result = run(definition, {"s": half})
    assert result["status"] == "FAILED"
    assert result["error"] == "States.DataLimitExceeded"
    assert "'P'" in result["cause"]
    assert types(result) == ["ExecutionStarted", "PassStateEntered", "ExecutionFailed"]


@pytest.mark.parametrize("cap", [3, 4, 10, 21])
def test_a_history_reaching_max_events_fails_the_execution(cap: int) -> None:
    states = [(f"S{i}", pass_(Next=f"S{i + 1}")) for i in range(20)] + [("S20", pass_())]
    result = run(machine(*states), {}, limits=Limits(max_events=cap))
    assert len(result["history"]) == cap
    assert result["status"] == "FAILED"
    assert result["error"] == "States.Runtime"
    assert str(cap) in result["cause"]
    assert types(result)[-1] == "ExecutionFailed"


def test_a_history_below_max_events_is_not_affected() -> None:
    states = [(f"S{i}", pass_(Next=f"S{i + 1}")) for i in range(20)] + [("S20", pass_())]
    result = run(machine(*states), {}, limits=Limits(max_events=2 + 2 * 21 + 1))
    assert result["status"] == "SUCCEEDED"


def test_max_events_counts_events_from_tasks_and_timers() -> None:
    definition = machine(("W", wait(5, Next="T")), ("T", task()))
    result = run(definition, {}, {"T": {"Return": 1}}, limits=Limits(max_events=6))
    assert types(result) == [
        "ExecutionStarted",
        "WaitStateEntered",
        "WaitStateExited",
        "TaskStateEntered",
        "TaskScheduled",
        "ExecutionFailed",
    ]


# ---------------------------------------------------------------------------------------- variables
def test_variables_in_map_iterations_read_outer_scope_and_do_not_leak_out() -> None:
    definition = machine(
        ("Init", pass_(Assign={"base": 10, "seen": "outer"}, Next="M")),
        (
            "M",
            map_state(
                branch(
                    ("Add", pass_(Assign={"mine.$": "$"}, Next="Show")),
                    ("Show", pass_(Parameters={"base.$": "$base", "mine.$": "$mine"})),
                ),
                Next="After",
            ),
        ),
        ("After", pass_(Parameters={"seen.$": "$seen", "results.$": "$"})),
    )
    result = run(definition, [1, 2])
    assert result["output"] == {
        "seen": "outer",
        "results": [{"base": 10, "mine": 1}, {"base": 10, "mine": 2}],
    }
    leaked = machine(
        ("M", map_state(branch(("Add", pass_(Assign={"inner": 1}))), Next="After")),
        ("After", pass_(Parameters={"v.$": "$inner"})),
    )
    result = run(leaked, [1])
    assert result["status"] == "FAILED"
    assert result["error"] == "States.Runtime"


def test_variables_in_parallel_branches_are_separate() -> None:
    definition = machine(
        ("Init", pass_(Assign={"x": "top"}, Next="P")),
        (
            "P",
            {
                "Type": "Parallel",
                "Branches": [
                    branch(
                        ("A", pass_(Assign={"x": "a"}, Next="A2")), ("A2", pass_(Parameters={"x.$": "$x"}))
                    ),
                    branch(("B", pass_(Parameters={"x.$": "$x"}))),
                ],
                "Next": "After",
            },
        ),
        ("After", pass_(Parameters={"branches.$": "$", "x.$": "$x"})),
    )
    assert run(definition, {})["output"] == {"branches": [{"x": "a"}, {"x": "top"}], "x": "top"}


def test_assign_on_map_and_parallel_is_visible_after_them() -> None:
    definition = machine(
        ("M", map_state(branch(("P", pass_())), Assign={"count.$": "States.ArrayLength($)"}, Next="After")),
        ("After", pass_(Parameters={"count.$": "$count"})),
    )
    assert run(definition, [7, 8, 9])["output"] == {"count": 3}


# ---------------------------------------------------------------------------------------- context
def test_context_object_fields() -> None:
    definition = machine(
        ("W", wait(2, Next="P")),
        (
            "P",
            pass_(
                Parameters={
                    "name.$": "$$.Execution.Name",
                    "input.$": "$$.Execution.Input",
                    "start.$": "$$.Execution.StartTime",
                    "entered.$": "$$.State.EnteredTime",
                    "state.$": "$$.State.Name",
                    "machine.$": "$$.StateMachine.Name",
                }
            ),
        ),
    )
    result = run(definition, {"a": 1}, name="ex", state_machine_name="SM")
    assert result["output"] == {
        "name": "ex",
        "input": {"a": 1},
        "start": "2023-11-14T22:13:20.000Z",
        "entered": "2023-11-14T22:13:22.000Z",
        "state": "P",
        "machine": "SM",
    }


def test_retry_count_on_map_and_parallel_states() -> None:
    definition = machine(
        (
            "M",
            map_state(
                branch(("T", task())),
                ItemSelector={"retry.$": "$$.State.RetryCount"},
                Retry=[{"ErrorEquals": ["Flaky"], "MaxAttempts": 1}],
            ),
        )
    )
    result = run(definition, [1], {"T": [throw("Flaky"), {"Return": "ok"}]})
    params = [json.loads(details(e)["parameters"]) for e in of_type(result, "TaskScheduled")]
    assert params == [{"retry": 0}, {"retry": 1}]


# ---------------------------------------------------------------------------------------- robustness
def test_fail_state_without_error_or_cause() -> None:
    result = run(machine(("F", {"Type": "Fail"})), {})
    assert result == {"status": "FAILED", "history": result["history"]}
    assert details(result["history"][-1]) == {}


def test_an_unvalidated_definition_with_a_bad_next_fails_cleanly() -> None:
    result = run(machine(("P", pass_(Next="Nowhere"))), {})
    assert result["status"] == "FAILED"
    assert result["error"] == "States.Runtime"
    assert "Nowhere" in result["cause"]


def test_an_unvalidated_definition_with_an_unknown_state_type_fails_cleanly() -> None:
    result = run(machine(("X", {"Type": "Teleport", "End": True})), {})
    assert result["status"] == "FAILED"
    assert result["error"] == "States.Runtime"


def test_run_local_validates_by_default() -> None:
    with pytest.raises(UsageError, match="invalid definition"):
        run_local({"StartAt": "X", "States": {"X": {"Type": "Teleport", "End": True}}}, {})


def test_intrinsic_failure_fails_the_execution_with_its_location() -> None:
    result = run(machine(("P", pass_(Parameters={"x.$": "States.ArrayGetItem($.a, 5)"}))), {"a": [1]})
    assert result["status"] == "FAILED"
    assert result["error"] == "States.IntrinsicFailure"
    assert result["cause"].startswith(
        "An error occurred while executing the state 'P' (entered at the event id #2)."
    )


# ---------------------------------------------------------------------------------------- determinism
WORKLOAD = machine(
    (
        "Init",
        pass_(
            Parameters={"id.$": "States.UUID()", "r.$": "States.MathRandom(1, 1000)", "xs.$": "$.xs"},
            Next="M",
        ),
    ),
    (
        "M",
        map_state(
            branch(
                (
                    "T",
                    task(
                        Retry=[
                            {"ErrorEquals": ["States.ALL"], "JitterStrategy": "FULL", "IntervalSeconds": 10}
                        ]
                    ),
                )
            ),
            ItemsPath="$.xs",
            MaxConcurrency=2,
            ResultPath="$.out",
            Next="W",
        ),
    ),
    ("W", wait(7)),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    xs=st.lists(st.integers(-5, 5), max_size=5),
    answers=st.lists(st.sampled_from(["ok", "fail"]), min_size=1, max_size=6),
    seed=st.integers(0, 2**32),
)
def test_same_definition_input_seed_and_clock_give_the_same_history(
    xs: list[int], answers: list[str], seed: int
) -> None:
    mocks = {"T": [{"Return": "r"} if a == "ok" else throw("Flaky") for a in answers]}
    first = run(WORKLOAD, {"xs": xs}, mocks, seed=seed)
    second = run(WORKLOAD, {"xs": xs}, mocks, seed=seed)
    assert first == second
    ids = [e["id"] for e in first["history"]]
    assert ids == list(range(1, len(ids) + 1))


def test_different_seeds_change_only_what_is_random() -> None:
    first = run(WORKLOAD, {"xs": [1]}, {"T": {"Return": 1}}, seed=1)
    second = run(WORKLOAD, {"xs": [1]}, {"T": {"Return": 1}}, seed=2)
    assert first["output"]["id"] != second["output"]["id"]
    assert types(first) == types(second)


def test_the_default_seed_comes_from_the_clock() -> None:
    definition = machine(("P", pass_(Parameters={"id.$": "States.UUID()"})))
    a = run_local(definition, {}, validate=False, clock=lambda: T0)
    b = run_local(definition, {}, validate=False, clock=lambda: T0)
    c = run_local(definition, {}, validate=False, clock=lambda: T0 + 1)
    assert a == b
    assert a != c
