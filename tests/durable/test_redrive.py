"""Partial redrive of durable executions on SQLite and PostgreSQL: a failed Map re-runs only its failed and
aborted iterations; the tasks of the iterations that succeeded never run again.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from orchestrator.executions.service import Executions
from orchestrator.executions.tasks import TaskContext, TaskError
from orchestrator.registry.service import Registry
from orchestrator.store import EventStore

LAMBDA = "arn:aws:states:::lambda:invoke"
MACHINE = {
    "StartAt": "Prepare",
    "States": {
        "Prepare": {"Type": "Pass", "Next": "Each"},
        "Each": {
            "Type": "Map",
            "ItemProcessor": {
                "StartAt": "Deploy",
                "States": {"Deploy": {"Type": "Task", "Resource": LAMBDA, "End": True}},
            },
            "Next": "Done",
        },
        "Done": {"Type": "Succeed"},
    },
}


class Deployer:
    """Deploys items; the ones in ``broken`` fail until they are repaired."""

    def __init__(self, broken: set[str]) -> None:
        self.broken = broken
        self.calls: list[str] = []

    def __call__(self, context: TaskContext) -> Any:
        item = str(context.task.parameters)
        self.calls.append(item)
        if item in self.broken:
            raise TaskError("Deploy.Failed", f"{item} is broken")
        return f"deployed {item}"


@pytest.fixture
def store(database_url: str) -> Iterator[EventStore]:
    opened = EventStore.from_url(database_url, auto_upgrade=True)
    Registry(opened).publish("m", MACHINE)
    yield opened
    opened.close()


def test_redrive_reruns_only_the_iterations_that_did_not_succeed(store: EventStore) -> None:
    deployer = Deployer(broken={"c"})
    ex = Executions(store, Registry(store), executors={"arn": deployer})
    loaded, _ = ex.start("m", ["a", "b", "c"], name="deploy")
    failed = ex.run_until_settled(loaded.id, timeout=60)
    assert (failed.status, failed.machine.error) == ("FAILED", "Deploy.Failed")
    assert sorted(deployer.calls) == ["a", "b", "c"]

    deployer.broken.clear()
    deployer.calls.clear()
    fresh = Executions(store, Registry(store), executors={"arn": deployer})  # nothing cached
    done = fresh.run_until_settled(fresh.redrive(loaded.id).id, timeout=60)
    assert done.status == "SUCCEEDED"
    assert deployer.calls == ["c"]  # a and b kept their results
    assert done.machine.output == ["deployed a", "deployed b", "deployed c"]
    redriven = next(i for i, e in enumerate(done.history) if e.type == "ExecutionRedriven")
    after = [(e.type, e.details.get("index")) for e in done.history[redriven:]]
    assert after[:3] == [("ExecutionRedriven", None), ("MapStateEntered", None), ("MapStateStarted", None)]
    assert [i for t, i in after if t == "MapIterationStarted"] == [2]
    assert [t for t, _ in after].count("TaskScheduled") == 1
    assert ("PassStateEntered", None) not in after  # Prepare is not run again
    # the whole history folds back on a fresh service
    assert Executions(store, Registry(store)).load(loaded.id).machine.output == done.machine.output
    assert fresh.describe(loaded.id)["redriveCount"] == 1
