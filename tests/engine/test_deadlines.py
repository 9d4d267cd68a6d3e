"""A Task's TimeoutSeconds and HeartbeatSeconds are the machine's own timers.

The TimeoutSeconds deadline runs from TaskStarted, the HeartbeatSeconds one from TaskStarted or the
last TaskHeartbeat; ``advance_to`` past a deadline records TaskTimedOut, which Retry and Catch handle
like any task failure. Replaying the history (heartbeats included) rebuilds the same deadlines.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from orchestrator.engine.events import HistoryEvent
from orchestrator.engine.interpreter import Execution
from orchestrator.engine.replay import HistoryDiverged, replay

T0 = 1_700_000_000.0


def machine(task: dict[str, Any], *extra: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    states: dict[str, Any] = {
        "T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": True}
    }
    states["T"].update(task)
    states.update(dict(extra))
    return {"StartAt": "T", "States": states}


CAUGHT = ("Caught", {"Type": "Pass", "End": True})


def started(definition: dict[str, Any], events: list[HistoryEvent] | None = None) -> tuple[Execution, str]:
    execution = Execution(definition, sink=None if events is None else events.append)
    execution.start({}, T0)
    (task,) = execution.pending_tasks()
    execution.task_started(task.id, T0 + 1)
    return execution, task.id


def timed_out(events: list[HistoryEvent]) -> list[HistoryEvent]:
    return [e for e in events if e.type == "TaskTimedOut"]


def test_timeout_seconds_runs_from_task_started_and_is_caught() -> None:
    events: list[HistoryEvent] = []
    execution, _ = started(
        machine(
            {"TimeoutSeconds": 30, "Catch": [{"ErrorEquals": ["States.Timeout"], "Next": "Caught"}]}, CAUGHT
        ),
        events,
    )
    assert execution.next_due() == T0 + 31
    execution.advance_to(T0 + 30.5)
    assert execution.status == "RUNNING" and not timed_out(events)
    execution.advance_to(T0 + 100)
    assert execution.status == "SUCCEEDED"
    assert execution.output == {"Error": "States.Timeout", "Cause": ""}
    (event,) = timed_out(events)
    assert event.timestamp == T0 + 31 and event.details["error"] == "States.Timeout"


def test_an_unstarted_task_has_no_deadline() -> None:
    execution = Execution(machine({"TimeoutSeconds": 5, "HeartbeatSeconds": 2}))
    execution.start({}, T0)
    assert execution.next_due() is None


def test_heartbeats_push_the_heartbeat_deadline_but_not_the_timeout() -> None:
    events: list[HistoryEvent] = []
    execution, token = started(machine({"HeartbeatSeconds": 10, "TimeoutSeconds": 25}), events)
    assert execution.next_due() == T0 + 11
    for t in (8, 16, 24):
        execution.advance_to(T0 + t)
        execution.task_heartbeat(token, T0 + t)
    assert execution.status == "RUNNING" and execution.next_due() == T0 + 26  # TimeoutSeconds first
    execution.advance_to(T0 + 40)
    assert (execution.status, execution.error) == ("FAILED", "States.Timeout")
    assert [e.timestamp for e in events if e.type == "TaskHeartbeat"] == [T0 + 8, T0 + 16, T0 + 24]


def test_a_missed_heartbeat_is_a_heartbeat_timeout_that_states_timeout_retries() -> None:
    events: list[HistoryEvent] = []
    definition = machine(
        {
            "HeartbeatSeconds": 5,
            "Retry": [{"ErrorEquals": ["States.Timeout"], "IntervalSeconds": 3, "MaxAttempts": 1}],
        }
    )
    execution, token = started(definition, events)
    execution.task_heartbeat(token, T0 + 4)
    execution.advance_to(T0 + 8.9)
    assert execution.status == "RUNNING" and not timed_out(events)
    execution.advance_to(T0 + 9.9)
    (event,) = timed_out(events)
    assert event.timestamp == T0 + 9 and event.details["error"] == "States.HeartbeatTimeout"
    assert execution.pending_tasks() == [] and execution.next_due() == T0 + 12  # the back-off
    execution.advance_to(T0 + 12)
    (retry,) = execution.pending_tasks()
    assert retry.attempt == 1 and retry.id != token
    execution.task_started(retry.id, T0 + 13)
    execution.advance_to(T0 + 18)
    assert (execution.status, execution.error) == ("FAILED", "States.HeartbeatTimeout")


def test_an_answer_removes_the_deadlines() -> None:
    execution, token = started(machine({"TimeoutSeconds": 5, "HeartbeatSeconds": 2, "Next": "W"}, W_STATE))
    execution.task_succeeded(token, {"ok": True}, T0 + 1.5)
    assert execution.next_due() == T0 + 1.5 + 60  # only the Wait state's timer is left
    execution.advance_to(T0 + 1000)
    assert execution.status == "SUCCEEDED"


W_STATE = ("W", {"Type": "Wait", "Seconds": 60, "End": True})


def test_heartbeat_needs_a_started_pending_task_and_record_refuses_it() -> None:
    execution = Execution(machine({"HeartbeatSeconds": 5}))
    execution.start({}, T0)
    (task,) = execution.pending_tasks()
    with pytest.raises(ValueError, match="has not started"):
        execution.task_heartbeat(task.id, T0)
    with pytest.raises(KeyError, match="no pending task"):
        execution.task_heartbeat("nope", T0)
    with pytest.raises(ValueError, match="task_heartbeat"):
        execution.record("TaskHeartbeat", {}, "", T0)
    execution.task_started(task.id, T0)
    with pytest.raises(ValueError, match="started already"):
        execution.task_started(task.id, T0)


def test_deadlines_of_a_map_iteration_time_out_that_iteration_only() -> None:
    events: list[HistoryEvent] = []
    definition = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "ItemProcessor": machine(
                    {"HeartbeatSeconds": 10, "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]},
                    CAUGHT,
                ),
                "End": True,
            }
        },
    }
    execution = Execution(definition, sink=events.append)
    execution.start([1, 2], T0)
    first, second = execution.pending_tasks()
    execution.task_started(first.id, T0)
    execution.task_started(second.id, T0)
    execution.task_heartbeat(second.id, T0 + 8)
    execution.advance_to(T0 + 12)
    assert [t.id for t in execution.pending_tasks()] == [second.id]
    execution.task_succeeded(second.id, "done", T0 + 13)
    assert execution.status == "SUCCEEDED"
    assert execution.output == [{"Error": "States.HeartbeatTimeout", "Cause": ""}, "done"]
    assert [e.scope for e in timed_out(events)] == ["M/0"]


def test_replay_rebuilds_deadlines_from_heartbeats_and_detects_impossible_ones() -> None:
    events: list[HistoryEvent] = []
    definition = machine(
        {"HeartbeatSeconds": 10, "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]}, CAUGHT
    )
    execution, token = started(definition, events)
    execution.task_heartbeat(token, T0 + 9)
    execution.advance_to(T0 + 30)
    assert execution.status == "SUCCEEDED"
    assert timed_out(events)[0].timestamp == T0 + 19

    stored = [HistoryEvent.from_record(json.loads(json.dumps(e.to_record()))) for e in events]
    # replay checks every event it re-derives against the stored one, the timeout's time included
    replayed = replay(Execution(definition), stored)
    assert (replayed.status, replayed.output) == (execution.status, execution.output)
    half = replay(Execution(definition), stored[: stored.index(timed_out(stored)[0])])
    assert half.status == "RUNNING" and half.next_due() == T0 + 19

    # a timeout stored before the machine's deadline is a driver's report (run-local's mocks)
    early = [HistoryEvent.from_record(e.to_record()) for e in stored]
    index = next(i for i, e in enumerate(early) if e.type == "TaskTimedOut")
    early[index].timestamp = T0 + 12
    for later in early[index + 1 :]:
        later.timestamp = T0 + 12
    replayed = replay(Execution(definition), early)  # reported by a driver: still a valid history
    assert replayed.status == "SUCCEEDED"
    # but a heartbeat for a task that has not started cannot have happened
    bogus = [*stored[:3], HistoryEvent(4, 3, T0 + 1, "TaskHeartbeat", dict(stored[3].details), "")]
    with pytest.raises(HistoryDiverged, match="has not started"):
        replay(Execution(definition), bogus)
