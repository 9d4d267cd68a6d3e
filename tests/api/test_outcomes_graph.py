"""What each state's outcome is (folded from real histories of the engine) and the graph's layout."""

from __future__ import annotations

import itertools
from typing import Any

from orchestrator.api import graph, outcomes
from orchestrator.engine.events import HistoryEvent
from orchestrator.engine.interpreter import Execution, ExecutionInfo
from orchestrator.engine.local import Mocks

NESTED = {
    "StartAt": "Fan",
    "States": {
        "Fan": {
            "Type": "Parallel",
            "Branches": [
                {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}},
                {
                    "StartAt": "Items",
                    "States": {
                        "Items": {
                            "Type": "Map",
                            "ItemsPath": "$.items",
                            "ItemProcessor": {
                                "StartAt": "Work",
                                "States": {"Work": {"Type": "Task", "Resource": "reflow:work", "End": True}},
                            },
                            "End": True,
                        }
                    },
                },
            ],
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Recover"}],
            "Next": "Loop",
        },
        "Loop": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.again", "IsPresent": True, "Next": "Fan"}],
            "Default": "Done",
        },
        "Recover": {"Type": "Pass", "Next": "Done"},
        "Done": {"Type": "Succeed"},
    },
}


def history(definition: dict[str, Any], value: Any, mocks: dict[str, Any]) -> list[HistoryEvent]:
    """Run ``definition`` with the engine, answering tasks from ``mocks``; its history events."""
    events: list[HistoryEvent] = []
    machine = Execution(
        dict(definition), info=ExecutionInfo(name="t", state_machine_name="T"), sink=events.append, seed=1
    )
    answers = Mocks.parse(mocks)
    now = 1000.0
    machine.start(value, now)
    while machine.status == "RUNNING":
        pending = [t for t in machine.pending_tasks() if not t.started]
        for task in pending:
            if machine.status == "RUNNING" and task.id in machine.tasks:
                machine.task_started(task.id, now)
                answer = answers.answer(task) or {}
                if "Throw" in answer:
                    machine.task_failed(task.id, answer["Throw"]["Error"], answer["Throw"]["Cause"], now)
                else:
                    machine.task_succeeded(task.id, answer.get("Return"), now)
        if not pending:
            due = machine.next_due()
            if due is None:
                break
            now = max(now, due)
            machine.advance_to(now)
    return events


def test_nested_keys_and_a_caught_map_failure() -> None:
    assert list(outcomes.state_keys(NESTED)) == [
        "Fan",
        "Fan/0/A",
        "Fan/1/Items",
        "Fan/1/Items/*/Work",
        "Loop",
        "Recover",
        "Done",
    ]
    assert outcomes.key_of(NESTED, "Fan/1/Items/3", "Work") == "Fan/1/Items/*/Work"
    assert outcomes.key_of(NESTED, "Fan/0", "A") == "Fan/0/A"


def test_states_outcomes_follow_the_history() -> None:
    definition = {
        "StartAt": "Build",
        "States": {
            "Build": {
                "Type": "Task",
                "Resource": "reflow:build",
                "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1}],
                "Next": "Deploy",
            },
            "Deploy": {
                "Type": "Task",
                "Resource": "reflow:deploy",
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Undo"}],
                "Next": "Done",
            },
            "Undo": {"Type": "Task", "Resource": "reflow:undo", "End": True},
            "Done": {"Type": "Succeed"},
        },
    }
    mocks = {
        "Build": [{"Throw": {"Error": "Flaky", "Cause": "once"}}, {"Return": {"ok": 1}}],
        "Deploy": {"Throw": {"Error": "Bad", "Cause": "deploy broke"}},
        "Undo": {"Throw": {"Error": "Worse", "Cause": "undo broke"}},
    }
    folded = outcomes.fold(definition, history(definition, {}, mocks))
    assert {k: o.status for k, o in folded.items()} == {
        "Build": "succeeded",  # retried, then succeeded
        "Deploy": "caught",
        "Undo": "failed",  # still in progress when the execution failed
        "Done": "not-reached",
    }
    build = folded["Build"].to_json()
    assert [a["outcome"] for a in build["attempts"]] == ["failed", "succeeded"]
    assert build["attempts"][0]["error"] == "Flaky"
    assert folded["Undo"].to_json()["error"] == "Worse"
    assert outcomes.summary(folded) == {
        "succeeded": 1,
        "caught": 1,
        "failed": 1,
        "running": 0,
        "not-reached": 1,
    }


def test_map_iterations_show_the_worst_outcome() -> None:
    mocks = {"Work": [{"Return": 1}, {"Throw": {"Error": "Item.Bad", "Cause": "item 2"}}, {"Return": 3}]}
    folded = outcomes.fold(NESTED, history(NESTED, {"items": [1, 2, 3]}, mocks))
    assert folded["Fan/1/Items/*/Work"].status == "failed"
    assert folded["Fan"].status == "caught" and folded["Recover"].status == "succeeded"
    assert folded["Loop"].status == "not-reached" and folded["Fan/0/A"].status == "succeeded"
    assert folded["Fan/1/Items/*/Work"].visits == 3


def test_layout_places_every_state_without_overlaps() -> None:
    laid = graph.layout(NESTED)
    keys = [n.key for n in laid.nodes]
    assert sorted(keys) == sorted(outcomes.state_keys(NESTED))
    boxes = {n.key: n for n in laid.nodes}
    for a, b in itertools.combinations(laid.nodes, 2):
        nested = a.key.startswith(b.key + "/") or b.key.startswith(a.key + "/")
        overlap = a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h and b.y < a.y + a.h
        assert nested or not overlap, (a.key, b.key)
        if nested:  # a child lies inside its frame
            outer, inner = (a, b) if b.key.startswith(a.key + "/") else (b, a)
            assert outer.x <= inner.x and inner.x + inner.w <= outer.x + outer.w
            assert outer.y <= inner.y and inner.y + inner.h <= outer.y + outer.h
    assert all(
        n.x >= 0 and n.x + n.w <= laid.width and n.y >= 0 and n.y + n.h <= laid.height for n in laid.nodes
    )
    kinds = {(e.source, e.target): e.kind for e in laid.edges}
    assert kinds[("Fan", "Recover")] == "catch" and kinds[("Loop", "Fan")] == "choice"
    assert kinds[("Loop", "Done")] == "default"
    assert boxes["Loop"].y > boxes["Fan"].y + boxes["Fan"].h  # the loop back to Fan does not pull it up
