"""Property: a snapshot restored at any quiescent point continues exactly as the original machine.

For many definitions (every runnable case of the conformance corpus, and task-heavy machines with
deadlines, heartbeats, Retry with jitter, Catch, Map and Parallel), a seeded driver plays the outside
world: it starts, heartbeats, answers and fails tasks, lets time pass, stops and redrives. Then:

* a run that swaps its machine for ``restore(dump(machine))`` (through JSON) after every door writes
  exactly the history of the run that never does, and every restored machine dumps identically;
* restoring the snapshot of any quiescent point and resuming with the rest of the history (what a
  durable load does) passes replay's event-by-event check and ends in the same state as a replay of
  the whole history.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.asl.validate import validate_definition
from orchestrator.engine import snapshot
from orchestrator.engine.events import HistoryEvent
from orchestrator.engine.interpreter import Execution, ExecutionInfo, Limits
from orchestrator.engine.replay import replay, resume

T0 = 1_700_000_000.0
CORPUS = Path(
    os.environ.get("ORCHESTRATOR_CONFORMANCE", Path(__file__).resolve().parents[3] / "shared" / "conformance")
)
INFO = ExecutionInfo(name="snap", state_machine_name="Snap")
LIMITS = Limits(max_events=None)
ERRORS = ["Custom.Error", "States.TaskFailed", "Other.Error"]


def fresh(definition: dict[str, Any], sink: Callable[[HistoryEvent], None] | None = None) -> Execution:
    return Execution(definition, info=INFO, sink=sink, seed=7, limits=LIMITS)


def roundtrip(machine: Execution) -> dict[str, Any]:
    return json.loads(json.dumps(snapshot.dump(machine)))  # type: ignore[no-any-return]


def restored(definition: dict[str, Any], state: dict[str, Any], sink: Any = None) -> Execution:
    return snapshot.restore(definition, json.loads(json.dumps(state)), info=INFO, sink=sink, limits=LIMITS)


class Driver:
    """The outside world, seeded: the same seed makes the same choices on machines in the same state."""

    def __init__(self, seed: int, max_steps: int = 60) -> None:
        self.rng = random.Random(seed)
        self.now = T0
        self.steps = max_steps
        self.redriven = False

    def step(self, machine: Execution) -> bool:
        """Pass one outside fact through a door; False when there is nothing left to do."""
        rng = self.rng
        if machine.status != "RUNNING":
            if machine.status != "SUCCEEDED" and not self.redriven and rng.random() < 0.5:
                self.redriven = True
                self.now += 1
                try:
                    machine.redrive(self.now)
                except ValueError:
                    return False
                return True
            return False
        self.steps -= 1
        if self.steps < 0:
            machine.stop("Driver.Stop", "enough", self.now)
            return True
        options: list[tuple[str, str]] = []
        for task in machine.pending_tasks():
            if not task.started:
                options.append(("start", task.id))
            else:
                options += [("ok", task.id), ("ok", task.id), ("fail", task.id), ("beat", task.id)]
        due = machine.next_due()
        if due is not None:
            options.append(("advance", ""))
        if not options:
            return False
        kind, token = options[rng.randrange(len(options))]
        self.now += rng.choice([0.0, 0.5, 3.0])
        if kind == "advance":
            assert due is not None
            self.now = max(self.now, due + rng.choice([0.0, 2.0]))
            machine.advance_to(self.now)
        elif kind == "start":
            machine.task_started(token, self.now)
        elif kind == "beat":
            machine.task_heartbeat(token, self.now)
        elif kind == "ok":
            attempt = machine.tasks[token].attempt  # the outside world sees the token and the attempt
            machine.task_succeeded(
                token, {"token": token, "attempt": attempt, "n": rng.randrange(5)}, self.now
            )
        else:
            machine.task_failed(token, rng.choice(ERRORS), "boom", self.now)
        return True


def run(
    definition: dict[str, Any], input_value: Any, seed: int, *, swap: bool
) -> tuple[list[HistoryEvent], list[int]]:
    """Drive to the end; with ``swap``, replace the machine by its restored snapshot after every door.

    Returns the history and the number of events at each quiescent point.
    """
    events: list[HistoryEvent] = []
    machine = fresh(definition, events.append)
    machine.start(input_value, T0)
    driver = Driver(seed)
    points = [len(events)]
    while True:
        if swap:
            state = roundtrip(machine)
            machine = restored(definition, state, events.append)
            assert roundtrip(machine) == state
        if not driver.step(machine):
            return events, points
        points.append(len(events))


def check(definition: dict[str, Any], input_value: Any, seed: int) -> None:
    reference, points = run(definition, input_value, seed, swap=False)
    chained, _ = run(definition, input_value, seed, swap=True)
    assert [e.to_record() for e in chained] == [e.to_record() for e in reference]
    stored = [HistoryEvent.from_record(json.loads(json.dumps(e.to_record()))) for e in reference]
    whole = roundtrip(replay(fresh(definition), stored))
    for cut in sorted(set(points)):
        at_cut = roundtrip(replay(fresh(definition), stored[:cut]))
        continued = resume(restored(definition, at_cut), stored[cut:])
        assert roundtrip(continued) == whole, f"restored after event {cut}"


TASK = "arn:aws:states:::lambda:invoke"


def task(**fields: Any) -> dict[str, Any]:
    return {"Type": "Task", "Resource": TASK, **fields}


RETRY = [
    {"ErrorEquals": ["Custom.Error"], "IntervalSeconds": 2, "MaxAttempts": 2, "JitterStrategy": "FULL"},
    {"ErrorEquals": ["States.Timeout"], "IntervalSeconds": 1, "MaxAttempts": 1},
]
CATCH = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "After"}]
TASK_MACHINES: dict[str, dict[str, Any]] = {
    "deadlines": {
        "StartAt": "T",
        "States": {
            "T": task(TimeoutSeconds=5, HeartbeatSeconds=2, Retry=RETRY, Catch=CATCH, Next="After"),
            "After": {"Type": "Wait", "Seconds": 3, "Next": "Done"},
            "Done": {"Type": "Pass", "Parameters": {"id.$": "States.UUID()", "r.$": "$"}, "End": True},
        },
    },
    "map": {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": 2,
                "ToleratedFailureCount": 1,
                "ItemProcessor": {
                    "StartAt": "T",
                    "States": {
                        "T": task(HeartbeatSeconds=4, Retry=RETRY, Next="W"),
                        "W": {"Type": "Wait", "Seconds": 1, "End": True},
                    },
                },
                "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 1}],
                "Next": "After",
            },
            "After": {"Type": "Pass", "End": True},
        },
    },
    "parallel": {
        "StartAt": "P",
        "QueryLanguage": "JSONata",
        "States": {
            "P": {
                "Type": "Parallel",
                "Branches": [
                    {
                        "StartAt": "A",
                        "States": {
                            "A": task(TimeoutSeconds=3, Assign={"a": "{% $states.result %}"}, End=True)
                        },
                    },
                    {
                        "StartAt": "B",
                        "States": {
                            "B": {"Type": "Wait", "Seconds": 2, "Next": "C"},
                            "C": task(HeartbeatSeconds=1, Retry=RETRY, End=True),
                        },
                    },
                ],
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "After"}],
                "Next": "After",
            },
            "After": {"Type": "Pass", "Output": "{% [$states.input, $random()] %}", "End": True},
        },
    },
    "partial-redrive": {
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Parallel",
                "Branches": [
                    {
                        "StartAt": "Each",
                        "States": {
                            "Each": {
                                "Type": "Map",
                                "ItemsPath": "$.items",
                                "MaxConcurrency": 2,
                                "ItemProcessor": {
                                    "StartAt": "Set",
                                    "States": {
                                        "Set": {"Type": "Pass", "Assign": {"seen.$": "$"}, "Next": "T"},
                                        "T": task(Next="Echo"),
                                        "Echo": {
                                            "Type": "Pass",
                                            "Parameters": {"seen.$": "$seen"},
                                            "End": True,
                                        },
                                    },
                                },
                                "End": True,
                            }
                        },
                    },
                    {"StartAt": "Solo", "States": {"Solo": task(HeartbeatSeconds=2, End=True)}},
                ],
                "End": True,
            }
        },
    },
    "timeout": {
        "StartAt": "L",
        "TimeoutSeconds": 20,
        "States": {
            "L": task(
                Retry=[{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 3, "MaxAttempts": 5}], Next="L2"
            ),
            "L2": task(HeartbeatSeconds=3, End=True),
        },
    },
}


@pytest.mark.parametrize("name", sorted(TASK_MACHINES))
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_task_machines_restore_at_every_quiescent_point(name: str, seed: int) -> None:
    definition = TASK_MACHINES[name]
    assert validate_definition(definition) == []
    check(definition, {"items": [1, 2, 3]}, seed)


def _corpus() -> list[tuple[str, dict[str, Any], Any]]:
    if not CORPUS.is_dir():
        if os.environ.get("CI") == "true":
            raise AssertionError(f"the conformance corpus is missing at {CORPUS}")
        return []
    cases = []
    for path in sorted(CORPUS.rglob("*.json")):
        case = json.loads(path.read_text())
        if case.get("expected", {}).get("status") not in ("SUCCEEDED", "FAILED", "TIMED_OUT"):
            continue
        text = case.get("definition_text") or json.dumps(case["definition"])
        definition = json.loads(text)
        if validate_definition(definition):
            continue
        cases.append((str(path.relative_to(CORPUS)), definition, case.get("input")))
    return cases


def test_every_runnable_conformance_case_restores_at_every_quiescent_point() -> None:
    cases = _corpus()
    if not cases:
        pytest.skip(f"no conformance corpus at {CORPUS}")
    assert len(cases) > 300
    for rel, definition, input_value in cases:
        try:
            check(definition, input_value, seed=len(rel))
        except AssertionError as exc:
            raise AssertionError(f"{rel}: {exc}") from exc


def test_a_snapshot_of_another_format_or_a_busy_machine_is_refused() -> None:
    definition = TASK_MACHINES["deadlines"]
    machine = fresh(definition)
    machine.start({}, T0)
    state = roundtrip(machine)
    state["format"] = 999
    with pytest.raises(snapshot.SnapshotMismatch, match="format 999"):
        restored(definition, state)
    machine._ready.append(machine._root)  # type: ignore[arg-type]
    with pytest.raises(snapshot.SnapshotMismatch, match="quiescent"):
        snapshot.dump(machine)
