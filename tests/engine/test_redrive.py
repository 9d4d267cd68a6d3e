"""Partial redrive, as Step Functions does it: a redriven Parallel or inline Map re-runs only the branches
or iterations that failed, were aborted or never started, each from the state where it stopped, and
keeps the results of the ones that succeeded. Retry, unlike a redrive, re-runs the whole state.
"""

from __future__ import annotations

import json
from typing import Any

from orchestrator.engine.events import HistoryEvent
from orchestrator.engine.interpreter import Execution
from orchestrator.engine.replay import replay

T0 = 1_700_000_000.0
LAMBDA = "arn:aws:states:::lambda:invoke"


def task(**fields: Any) -> dict[str, Any]:
    return {"Type": "Task", "Resource": LAMBDA, **fields}


def map_of(processor: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "StartAt": "M",
        "States": {"M": {"Type": "Map", "ItemProcessor": processor, "End": True, **fields}},
    }


ONE_TASK = {"StartAt": "T", "States": {"T": task(End=True)}}


class Run:
    """An execution with its history, answered by hand."""

    def __init__(self, definition: dict[str, Any], input_value: Any) -> None:
        self.definition = definition
        self.events: list[HistoryEvent] = []
        self.machine = Execution(definition, sink=self.events.append)
        self.machine.start(input_value, T0)
        self.mark = 0

    def pending(self) -> dict[str, str]:
        """Pending tasks by scope."""
        return {t.scope: t.id for t in self.machine.pending_tasks()}

    def answer(self, scope: str, result: Any = None, *, error: str | None = None) -> None:
        token = self.pending()[scope]
        self.machine.task_started(token, T0)
        if error is None:
            self.machine.task_succeeded(token, result, T0)
        else:
            self.machine.task_failed(token, error, "boom", T0)

    def redrive(self) -> None:
        self.mark = len(self.events)
        self.machine.redrive(T0 + 10)

    def since_redrive(self) -> list[tuple[str, str, Any]]:
        return [(e.type, e.scope, e.details.get("index")) for e in self.events[self.mark :]]

    def replays(self) -> bool:
        stored = [HistoryEvent.from_record(json.loads(json.dumps(e.to_record()))) for e in self.events]
        again = replay(Execution(self.definition), stored)
        return (again.status, again.output) == (self.machine.status, self.machine.output)


def test_a_redriven_map_reruns_only_the_failed_and_aborted_iterations() -> None:
    run = Run(map_of(ONE_TASK), ["a", "b", "c", "d"])
    assert sorted(run.pending()) == ["M/0", "M/1", "M/2", "M/3"]
    run.answer("M/0", "A")
    run.answer("M/1", "B")
    run.answer("M/2", error="Item.Failed")
    assert (run.machine.status, run.machine.error) == ("FAILED", "Item.Failed")
    assert [e.details["index"] for e in run.events if e.type == "MapIterationAborted"] == [3]

    run.redrive()
    assert sorted(run.pending()) == ["M/2", "M/3"]  # 0 and 1 succeeded: not run again
    run.answer("M/3", "D")
    run.answer("M/2", "C")
    assert run.machine.status == "SUCCEEDED"
    assert run.machine.output == ["A", "B", "C", "D"]
    kinds = run.since_redrive()
    assert kinds[:3] == [
        ("ExecutionRedriven", "", None),
        ("MapStateEntered", "", None),
        ("MapStateStarted", "", None),
    ]
    assert [i for k, _, i in kinds if k == "MapIterationStarted"] == [2, 3]
    assert [i for k, _, i in kinds if k == "MapIterationSucceeded"] == [3, 2]
    assert kinds[-3:] == [
        ("MapStateSucceeded", "", None),
        ("MapStateExited", "", None),
        ("ExecutionSucceeded", "", None),
    ]
    assert run.replays()


def test_iterations_that_never_started_run_on_redrive_and_a_failed_one_resumes_where_it_stopped() -> None:
    processor = {
        "StartAt": "Prepare",
        "States": {
            "Prepare": {"Type": "Pass", "Parameters": {"item.$": "$", "prepared": True}, "Next": "T"},
            "T": task(End=True),
        },
    }
    run = Run(map_of(processor, MaxConcurrency=1), [1, 2, 3])
    run.answer("M/0", "one")
    run.answer("M/1", error="Item.Failed")
    assert run.machine.status == "FAILED"
    assert not [e for e in run.events if e.type == "MapIterationStarted" and e.details["index"] == 2]

    run.redrive()
    # iteration 1 resumes at its task with the input it had there: Prepare is not run again
    (token,) = [t for t in run.machine.pending_tasks() if t.scope == "M/1"]
    assert token.parameters == {"item": 2, "prepared": True}
    assert [s for k, s, _ in run.since_redrive() if k == "PassStateEntered"] == []
    run.answer("M/1", "two")
    run.answer("M/2", "three")  # never started before: runs from its start
    assert [s for k, s, _ in run.since_redrive() if k == "PassStateEntered"] == ["M/2"]
    assert run.machine.status == "SUCCEEDED" and run.machine.output == ["one", "two", "three"]
    assert run.replays()


def test_a_redriven_parallel_reruns_only_the_failed_branch() -> None:
    definition = {
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "A", "States": {"A": task(End=True)}},
                    {"StartAt": "B", "States": {"B": task(End=True)}},
                ],
                "Next": "After",
            },
            "After": {"Type": "Pass", "End": True},
        },
    }
    run = Run(definition, {})
    run.answer("P/0", {"branch": 0})
    run.answer("P/1", error="Branch.Failed")
    assert run.machine.status == "FAILED"
    run.redrive()
    assert list(run.pending()) == ["P/1"]
    run.answer("P/1", {"branch": 1, "again": True})
    assert run.machine.status == "SUCCEEDED"
    assert run.machine.output == [{"branch": 0}, {"branch": 1, "again": True}]
    kinds = [k for k, _, _ in run.since_redrive()]
    assert kinds[:3] == ["ExecutionRedriven", "ParallelStateEntered", "ParallelStateStarted"]
    assert kinds.count("TaskScheduled") == 1
    assert run.replays()


def test_nested_map_in_a_parallel_branch_resumes_recursively() -> None:
    definition = {
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "Inner", "States": {"Inner": map_of(ONE_TASK)["States"]["M"]}},
                    {"StartAt": "Solo", "States": {"Solo": task(End=True)}},
                ],
                "End": True,
            }
        },
    }
    run = Run(definition, [10, 20])
    assert sorted(run.pending()) == ["P/0/Inner/0", "P/0/Inner/1", "P/1"]
    run.answer("P/1", "solo")
    run.answer("P/0/Inner/0", "x")
    run.answer("P/0/Inner/1", error="Deep.Failed")
    assert run.machine.status == "FAILED"
    run.redrive()
    assert list(run.pending()) == ["P/0/Inner/1"]
    run.answer("P/0/Inner/1", "y")
    assert run.machine.status == "SUCCEEDED" and run.machine.output == [["x", "y"], "solo"]
    assert run.replays()


def test_a_map_stopped_mid_run_resumes_its_running_and_unstarted_iterations() -> None:
    run = Run(map_of(ONE_TASK, MaxConcurrency=2), ["a", "b", "c"])
    run.answer("M/0", "A")
    assert sorted(run.pending()) == ["M/1", "M/2"]
    run.machine.stop("Operator.Stop", "maintenance", T0 + 1)
    assert run.machine.status == "ABORTED"
    run.redrive()
    assert sorted(run.pending()) == ["M/1", "M/2"]
    run.answer("M/1", "B")
    run.answer("M/2", "C")
    assert run.machine.status == "SUCCEEDED" and run.machine.output == ["A", "B", "C"]
    assert run.replays()


def test_retry_of_a_map_still_reruns_every_iteration() -> None:
    run = Run(
        map_of(ONE_TASK, Retry=[{"ErrorEquals": ["States.ALL"], "MaxAttempts": 1, "IntervalSeconds": 1}]),
        [1, 2],
    )
    run.answer("M/0", "first")
    run.answer("M/1", error="Item.Failed")
    run.machine.advance_to(T0 + 1)
    assert sorted(run.pending()) == ["M/0", "M/1"]  # the retry runs the whole state again


def test_a_redriven_distributed_map_records_map_run_redriven() -> None:
    processor = {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}, **ONE_TASK}
    run = Run(map_of(processor), [1, 2])
    run.answer("M/0", 1)
    run.answer("M/1", error="Item.Failed")
    run.redrive()
    (event,) = [e for e in run.events if e.type == "MapRunRedriven"]
    assert event.details["redriveCount"] == 1 and ":mapRun:" in event.details["mapRunArn"]
    run.answer("M/1", 2)
    assert run.machine.output == [1, 2] and run.replays()


def test_tolerated_failures_are_run_again_when_the_map_is_redriven() -> None:
    run = Run(map_of(ONE_TASK, ToleratedFailureCount=1), [1, 2, 3])
    run.answer("M/0", error="Item.Failed")  # tolerated
    run.answer("M/1", error="Item.Failed")  # one too many
    assert (run.machine.status, run.machine.error) == ("FAILED", "States.ExceedToleratedFailureThreshold")
    run.redrive()
    assert sorted(run.pending()) == ["M/0", "M/1", "M/2"]
    for scope, value in (("M/0", 1), ("M/1", 2), ("M/2", 3)):
        run.answer(scope, value)
    assert run.machine.output == [1, 2, 3] and run.replays()
