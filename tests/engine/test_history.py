"""The history an execution emits, in the shape of ``aws stepfunctions get-execution-history``.

Event types and detail members are checked against botocore's ``stepfunctions`` service model (the
one boto3 ships); ids, ``previousEventId`` and the event sequences against what AWS records for a
caught Task failure, Map and Parallel states.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import botocore.session
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.engine.events import OWN_TYPES, STEP_FUNCTIONS_TYPES, HistoryEvent, details_key, iso
from orchestrator.engine.interpreter import Execution
from orchestrator.engine.local import run_local

T0 = 1_700_000_000.0
LAMBDA = "arn:aws:states:::lambda:invoke"
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
# Detail members that carry JSON text.
JSON_TEXT = {"input", "output", "parameters"}


@cache
def model() -> Any:
    return botocore.session.get_session().get_service_model("stepfunctions")


def run(definition: dict[str, Any], input_value: Any = None, mocks: Any = None, **kw: Any) -> dict[str, Any]:
    kw.setdefault("seed", 3)
    return run_local(
        definition, input_value, mocks=mocks, history=True, validate=False, clock=lambda: T0, **kw
    )


def check_history(history: list[dict[str, Any]]) -> None:
    """Every invariant a get-execution-history answer has."""
    shape = model().shape_for("HistoryEvent")
    members = shape.members
    event_types = set(model().shape_for("HistoryEventType").enum)
    assert [e["id"] for e in history] == list(range(1, len(history) + 1))
    assert history[0]["type"] == "ExecutionStarted"
    assert history[0]["previousEventId"] == 0
    ends = {"ExecutionSucceeded", "ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted"}
    assert history[-1]["type"] in ends
    assert not any(e["type"] in ends for e in history[:-1])
    timestamps = [e["timestamp"] for e in history]
    assert timestamps == sorted(timestamps)
    for event in history:
        assert event["type"] in event_types
        assert 0 <= event["previousEventId"] < event["id"]
        assert ISO.fullmatch(event["timestamp"])
        keys = [k for k in event if k.endswith("EventDetails")]
        assert set(event) - set(keys) == {"timestamp", "type", "id", "previousEventId"}
        assert len(keys) <= 1
        for key in keys:
            assert key in members, key
            assert key == details_key(event["type"])
            detail_shape = members[key]
            body = event[key]
            assert set(body) <= set(detail_shape.members), (key, body)
            assert set(detail_shape.required_members) <= set(body), (key, body)
            for name, value in body.items():
                kind = detail_shape.members[name].type_name
                expected = {"string": str, "long": int, "integer": int, "structure": dict, "map": dict}[kind]
                assert isinstance(value, expected), (key, name, value)
                if name in JSON_TEXT:
                    assert isinstance(value, str)
                    json.loads(value)
            for name, value in body.get("assignedVariables", {}).items():
                assert isinstance(name, str)
                json.loads(value)
    for event in history[1:]:
        if event["previousEventId"] == 0:
            # Only the first state of the top level follows nothing.
            assert event["type"].endswith("StateEntered")
            assert event["id"] == 2


def types(result: dict[str, Any]) -> list[str]:
    return [e["type"] for e in result["history"]]


def links(result: dict[str, Any]) -> list[tuple[int, int, str]]:
    return [(e["id"], e["previousEventId"], e["type"]) for e in result["history"]]


def test_a_caught_task_failure_has_the_sequence_aws_records() -> None:
    # As AWS records it for a Lambda task whose exception a catcher takes (get-execution-history).
    definition = {
        "StartAt": "Start",
        "States": {
            "Start": {
                "Type": "Task",
                "Resource": LAMBDA,
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "EndWithStateTaskFailedHandler"}],
                "End": True,
            },
            "EndWithStateTaskFailedHandler": {
                "Type": "Pass",
                "Parameters": {"Error.$": "$.Error", "Cause.$": "$.Cause", "task_failed_error.$": "$"},
                "End": True,
            },
        },
    }
    result = run(
        definition,
        {"FunctionName": "f", "Payload": None},
        {"Start": {"Throw": {"Error": "Exception", "Cause": "boom"}}},
    )
    check_history(result["history"])
    assert links(result) == [
        (1, 0, "ExecutionStarted"),
        (2, 0, "TaskStateEntered"),
        (3, 2, "TaskScheduled"),
        (4, 3, "TaskStarted"),
        (5, 4, "TaskFailed"),
        (6, 5, "TaskStateExited"),
        (7, 6, "PassStateEntered"),
        (8, 7, "PassStateExited"),
        (9, 8, "ExecutionSucceeded"),
    ]
    history = result["history"]
    assert history[0]["executionStartedEventDetails"]["input"] == '{"FunctionName":"f","Payload":null}'
    assert history[0]["executionStartedEventDetails"]["inputDetails"] == {"truncated": False}
    assert json.loads(history[5]["stateExitedEventDetails"]["output"]) == {
        "Error": "Exception",
        "Cause": "boom",
    }


def test_an_uncaught_task_failure_ends_with_execution_failed_after_task_failed() -> None:
    definition = {"StartAt": "Start", "States": {"Start": {"Type": "Task", "Resource": LAMBDA, "End": True}}}
    result = run(definition, {}, {"Start": {"Throw": {"Error": "Exception", "Cause": "boom"}}})
    check_history(result["history"])
    assert links(result)[-2:] == [(5, 4, "TaskFailed"), (6, 5, "ExecutionFailed")]
    assert result["history"][-1]["executionFailedEventDetails"] == {"error": "Exception", "cause": "boom"}


def test_map_history() -> None:
    definition = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
                "End": True,
            }
        },
    }
    result = run(definition, ["a", "b"])
    check_history(result["history"])
    assert links(result) == [
        (1, 0, "ExecutionStarted"),
        (2, 0, "MapStateEntered"),
        (3, 2, "MapStateStarted"),
        (4, 3, "MapIterationStarted"),
        (5, 4, "PassStateEntered"),
        (6, 5, "PassStateExited"),
        (7, 6, "MapIterationSucceeded"),
        (8, 7, "MapIterationStarted"),
        (9, 8, "PassStateEntered"),
        (10, 9, "PassStateExited"),
        (11, 10, "MapIterationSucceeded"),
        (12, 11, "MapStateSucceeded"),
        (13, 12, "MapStateExited"),
        (14, 13, "ExecutionSucceeded"),
    ]
    history = result["history"]
    assert history[2]["mapStateStartedEventDetails"] == {"length": 2}
    assert history[3]["mapIterationStartedEventDetails"] == {"name": "M", "index": 0}
    assert history[10]["mapIterationSucceededEventDetails"] == {"name": "M", "index": 1}
    assert "mapStateSucceededEventDetails" not in history[11]


def test_parallel_history_links_the_end_of_the_branches_to_the_state() -> None:
    definition = {
        "StartAt": "Par",
        "States": {
            "Par": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "A", "States": {"A": {"Type": "Wait", "Seconds": 5, "End": True}}},
                    {"StartAt": "B", "States": {"B": {"Type": "Pass", "End": True}}},
                ],
                "End": True,
            }
        },
    }
    result = run(definition, {})
    check_history(result["history"])
    assert links(result) == [
        (1, 0, "ExecutionStarted"),
        (2, 0, "ParallelStateEntered"),
        (3, 2, "ParallelStateStarted"),
        (4, 3, "WaitStateEntered"),
        (5, 3, "PassStateEntered"),
        (6, 5, "PassStateExited"),
        (7, 4, "WaitStateExited"),
        (8, 7, "ParallelStateSucceeded"),
        (9, 8, "ParallelStateExited"),
        (10, 9, "ExecutionSucceeded"),
    ]


def test_retry_links_the_new_attempt_to_the_failure() -> None:
    definition = {
        "StartAt": "T",
        "States": {"T": {"Type": "Task", "Resource": LAMBDA, "Retry": [{"ErrorEquals": ["E"]}], "End": True}},
    }
    result = run(definition, {}, {"T": [{"Throw": {"Error": "E"}}, {"Return": 1}]})
    check_history(result["history"])
    assert links(result)[4:7] == [(5, 4, "TaskFailed"), (6, 5, "TaskScheduled"), (7, 6, "TaskStarted")]


def test_state_exited_names_assigned_variables_as_json_text() -> None:
    definition = {
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "Assign": {"n": 1, "s": "x", "o.$": "$"}, "End": True}},
    }
    result = run(definition, {"k": [1]})
    check_history(result["history"])
    exited = result["history"][2]["stateExitedEventDetails"]
    assert exited["assignedVariables"] == {"n": "1", "s": '"x"', "o": '{"k":[1]}'}
    assert exited["assignedVariablesDetails"] == {"truncated": False}


def test_task_scheduled_details_with_credentials_and_timeouts() -> None:
    definition = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": LAMBDA,
                "Credentials": {"RoleArn": "arn:aws:iam::123456789012:role/other"},
                "TimeoutSeconds": 30,
                "HeartbeatSeconds": 10,
                "End": True,
            }
        },
    }
    result = run(definition, {}, {"T": {"Return": 1}})
    check_history(result["history"])
    scheduled = result["history"][2]["taskScheduledEventDetails"]
    assert scheduled["taskCredentials"] == {"roleArn": "arn:aws:iam::123456789012:role/other"}
    assert (scheduled["timeoutInSeconds"], scheduled["heartbeatInSeconds"]) == (30, 10)


def test_timed_out_aborted_and_data_limit_histories_have_the_aws_shape() -> None:
    timed_out = run(
        {"TimeoutSeconds": 1, "StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 9, "End": True}}},
        {},
    )
    check_history(timed_out["history"])
    assert timed_out["history"][-1]["executionTimedOutEventDetails"] == {
        "error": "States.Timeout",
        "cause": "Execution timed out.",
    }
    events: list[HistoryEvent] = []
    execution = Execution(
        {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 9, "End": True}}}, sink=events.append
    )
    execution.start({}, T0)
    execution.stop("E", "C", T0 + 1)
    check_history([e.to_aws() for e in events])


def test_event_types_are_step_functions_or_our_own() -> None:
    assert set(model().shape_for("HistoryEventType").enum) == STEP_FUNCTIONS_TYPES
    assert not OWN_TYPES & STEP_FUNCTIONS_TYPES


@pytest.mark.parametrize(
    ("event_type", "key"),
    [
        ("PassStateEntered", "stateEnteredEventDetails"),
        ("MapStateExited", "stateExitedEventDetails"),
        ("MapIterationAborted", "mapIterationAbortedEventDetails"),
        ("TaskScheduled", "taskScheduledEventDetails"),
        ("ExecutionTimedOut", "executionTimedOutEventDetails"),
        ("MapStateStarted", "mapStateStartedEventDetails"),
        ("EvaluationFailed", "evaluationFailedEventDetails"),
        ("ApprovalGranted", "approvalGrantedEventDetails"),
    ],
)
def test_details_key(event_type: str, key: str) -> None:
    assert details_key(event_type) == key
    if event_type in STEP_FUNCTIONS_TYPES:
        assert key in model().shape_for("HistoryEvent").members


def test_history_event_round_trips_through_its_record() -> None:
    event = HistoryEvent(7, 5, T0 + 0.25, "PassStateExited", {"name": "P", "output": "{}"}, "Map/3")
    assert HistoryEvent.from_record(json.loads(json.dumps(event.to_record()))) == event
    assert event.to_aws() == {
        "timestamp": "2023-11-14T22:13:20.250Z",
        "type": "PassStateExited",
        "id": 7,
        "previousEventId": 5,
        "stateExitedEventDetails": {"name": "P", "output": "{}"},
    }
    assert "stateEnteredEventDetails" not in HistoryEvent(1, 0, T0, "ParallelStateStarted").to_aws()
    assert iso(0.0) == "1970-01-01T00:00:00.000Z"


def test_scopes_name_the_thread_of_each_event() -> None:
    events: list[HistoryEvent] = []
    definition = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "ItemProcessor": {
                    "StartAt": "Par",
                    "States": {
                        "Par": {
                            "Type": "Parallel",
                            "Branches": [{"StartAt": "B", "States": {"B": {"Type": "Pass", "End": True}}}],
                            "End": True,
                        }
                    },
                },
                "End": True,
            }
        },
    }
    execution = Execution(definition, sink=events.append)
    execution.start([1], T0)
    assert execution.status == "SUCCEEDED"
    scopes = {e.type: e.scope for e in events}
    assert scopes["MapStateEntered"] == ""
    assert scopes["ParallelStateEntered"] == "M/0"
    assert scopes["PassStateEntered"] == "M/0/Par/0"


def test_record_adds_our_own_event_to_a_running_thread() -> None:
    events: list[HistoryEvent] = []
    definition = {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": LAMBDA, "End": True}}}
    execution = Execution(definition, sink=events.append)
    execution.start({}, T0)
    event_id = execution.record("ApprovalGranted", {"by": "alice"}, "", T0 + 2)
    assert (events[-1].id, events[-1].previous_event_id, events[-1].type) == (
        event_id,
        event_id - 1,
        "ApprovalGranted",
    )
    assert events[-1].timestamp == T0 + 2
    with pytest.raises(ValueError, match="TaskStarted"):
        execution.record("TaskStarted", {}, "", T0)
    with pytest.raises(KeyError):
        execution.record("ApprovalGranted", {}, "Nowhere/0", T0)
    (task,) = execution.pending_tasks()
    execution.task_started(task.id, T0 + 3)
    assert events[-1].previous_event_id == event_id
    execution.stop(None, None, T0 + 4)
    with pytest.raises(KeyError):
        execution.record("ApprovalGranted", {}, "", T0 + 5)


# ---------------------------------------------------------------------------------------- properties
STATE_KINDS = st.sampled_from(["pass", "wait", "task", "map", "parallel", "choice", "fail"])


@st.composite
def definitions(draw: st.DrawFn) -> dict[str, Any]:
    """A chain of random states (with nested Map/Parallel bodies and Retry/Catch on tasks)."""
    counter = [0]

    def name() -> str:
        counter[0] += 1
        return f"S{counter[0]}"

    def chain(depth: int) -> dict[str, Any]:
        kinds = draw(
            st.lists(
                STATE_KINDS if depth < 2 else st.sampled_from(["pass", "wait", "task"]),
                min_size=1,
                max_size=4,
            )
        )
        names = [name() for _ in kinds]
        states: dict[str, Any] = {}
        for i, (kind, n) in enumerate(zip(kinds, names, strict=True)):
            nxt = {"Next": names[i + 1]} if i + 1 < len(names) else {"End": True}
            if kind == "pass":
                states[n] = {"Type": "Pass", "Assign": {"v": i}, **nxt}
            elif kind == "wait":
                states[n] = {"Type": "Wait", "Seconds": draw(st.integers(0, 100)), **nxt}
            elif kind == "task":
                state: dict[str, Any] = {"Type": "Task", "Resource": LAMBDA, **nxt}
                if draw(st.booleans()):
                    state["Retry"] = [{"ErrorEquals": ["States.ALL"], "MaxAttempts": draw(st.integers(0, 2))}]
                if draw(st.booleans()):
                    handler = name()
                    state["Catch"] = [
                        {"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.err", "Next": handler}
                    ]
                    states[handler] = {"Type": "Pass", **nxt}
                states[n] = state
            elif kind == "map":
                states[n] = {
                    "Type": "Map",
                    "ItemsPath": "$.items",
                    "MaxConcurrency": draw(st.integers(0, 2)),
                    "ItemProcessor": chain(depth + 1),
                    "ResultPath": "$.mapped",
                    **nxt,
                }
            elif kind == "parallel":
                states[n] = {
                    "Type": "Parallel",
                    "Branches": [chain(depth + 1) for _ in range(draw(st.integers(1, 2)))],
                    "ResultPath": "$.par",
                    **nxt,
                }
            elif kind == "choice":
                target = names[i + 1] if i + 1 < len(names) else None
                done = name()
                states[done] = {"Type": "Succeed"}
                states[n] = {
                    "Type": "Choice",
                    "Choices": [{"Variable": "$.flag", "BooleanEquals": True, "Next": target or done}],
                    "Default": done,
                }
            else:
                states[n] = {"Type": "Fail", "Error": "Random.Fail", "Cause": "drawn"}
        return {"StartAt": names[0], "States": states}

    return chain(0)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    definition=definitions(),
    flag=st.booleans(),
    answers=st.lists(st.sampled_from(["ok", "fail", "timeout"]), min_size=1, max_size=5),
)
def test_every_history_has_the_get_execution_history_shape(
    definition: dict[str, Any], flag: bool, answers: list[str]
) -> None:
    answer = {
        "ok": {"Return": {"r": 1}},
        "fail": {"Throw": {"Error": "Boom", "Cause": "c"}},
        "timeout": {"Throw": {"Error": "States.Timeout"}},
    }
    mocks = {LAMBDA: [answer[a] for a in answers]}
    result = run(definition, {"items": [1, 2], "flag": flag}, mocks, seed=11)
    check_history(result["history"])
    assert result == run(definition, {"items": [1, 2], "flag": flag}, mocks, seed=11)
    entered = sum(1 for t in types(result) if t.endswith("StateEntered"))
    closed = sum(1 for t in types(result) if t.endswith(("StateExited", "StateAborted")))
    assert closed <= entered
