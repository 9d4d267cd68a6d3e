"""Durable executions on SQLite and PostgreSQL: start, history, stop, reset, redrive, lineage."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from orchestrator.errors import UsageError
from orchestrator.executions.service import ExecutionConflict, Executions, UnknownExecution
from orchestrator.executions.tasks import TaskContext, TaskError
from orchestrator.registry.service import Registry
from orchestrator.store import EventStore

LAMBDA = "arn:aws:states:::lambda:invoke"
MACHINE = {
    "StartAt": "Prepare",
    "States": {
        "Prepare": {"Type": "Pass", "Result": 1, "ResultPath": "$.prepared", "Next": "Work"},
        "Work": {"Type": "Task", "Resource": LAMBDA, "ResultPath": "$.work", "Next": "Check"},
        "Check": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.work.ok", "BooleanEquals": True, "Next": "Done"}],
            "Default": "Broken",
        },
        "Broken": {"Type": "Fail", "Error": "Work.Broken"},
        "Done": {"Type": "Succeed"},
    },
}


class Lambda:
    """A task executor whose answers are scripted per call."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.calls: list[Any] = []

    def __call__(self, context: TaskContext) -> Any:
        self.calls.append(context.task.parameters)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def env(database_url: str) -> Iterator[tuple[EventStore, Registry]]:
    store = EventStore.from_url(database_url, auto_upgrade=True)
    registry = Registry(store)
    registry.publish("m", MACHINE)
    yield store, registry
    store.close()


def executions(env: tuple[EventStore, Registry], fn: Lambda) -> Executions:
    store, registry = env
    return Executions(store, registry, executors={"arn": fn})


def test_start_runs_to_completion_and_history_replays(env: tuple[EventStore, Registry]) -> None:
    fn = Lambda({"ok": True})
    ex = executions(env, fn)
    loaded, created = ex.start("m", {"x": 1}, name="e1", started_by="ada")
    assert created and loaded.status == "RUNNING"
    done = ex.run_until_settled(loaded.id, timeout=30)
    assert done.status == "SUCCEEDED"
    assert done.machine.output == {"x": 1, "prepared": 1, "work": {"ok": True}}
    assert fn.calls == [{"x": 1, "prepared": 1}]
    # a fresh service (no cache) folds the same state from the stored events
    fresh = executions(env, fn).load(loaded.id)
    assert fresh.status == "SUCCEEDED" and [e.to_aws() for e in fresh.history] == [
        e.to_aws() for e in done.history
    ]
    ids = [e.id for e in fresh.history]
    assert ids == list(range(1, len(ids) + 1))
    described = ex.describe(loaded.id)
    assert (
        described["status"] == "SUCCEEDED" and described["startedBy"] == "ada" and described["version"] == 1
    )
    rows = ex.list(state_machine="m")
    assert [(r["execution"], r["status"]) for r in rows] == [("m:e1", "SUCCEEDED")]
    assert ex.list(status="FAILED") == []


def test_same_name_same_input_is_idempotent_and_other_input_conflicts(
    env: tuple[EventStore, Registry],
) -> None:
    ex = executions(env, Lambda({"ok": True}))
    first, created = ex.start("m", {"x": 1}, name="dup")
    again, created_again = ex.start("m", {"x": 1}, name="dup")
    assert created and not created_again and again.id == first.id
    with pytest.raises(ExecutionConflict, match="different input"):
        ex.start("m", {"x": 2}, name="dup")


def test_a_start_elsewhere_of_an_existing_name_finds_it_or_conflicts(
    env: tuple[EventStore, Registry],
) -> None:
    """Another process (a service with nothing cached) starting the same name: the append at version
    0 fails, and the existing execution is returned (same input) or refused (other input)."""
    first, _ = executions(env, Lambda({"ok": True})).start("m", {"x": 1}, name="dup", started_by="ada")
    again, created = executions(env, Lambda({"ok": True})).start("m", {"x": 1}, name="dup", started_by="bob")
    assert not created and again.id == first.id and again.meta["started_by"] == "ada"
    with pytest.raises(ExecutionConflict, match="different input"):
        executions(env, Lambda({"ok": True})).start("m", {"x": 2}, name="dup")
    store, _ = env
    assert [r.type for r in store.read_stream(f"execution:{first.id}")].count("ExecutionStarted") == 1


def test_unknown_things_are_clear_errors(env: tuple[EventStore, Registry]) -> None:
    ex = executions(env, Lambda({"ok": True}))
    with pytest.raises(UnknownExecution, match="unknown execution 'm:nope'"):
        ex.describe("m:nope")
    with pytest.raises(UsageError, match="no version 9"):
        ex.start("m:9", {})
    with pytest.raises(UsageError, match="invalid execution name"):
        ex.start("m", {}, name="no spaces please")


def test_stop_aborts_and_redrive_resumes(env: tuple[EventStore, Registry]) -> None:
    fn = Lambda({"ok": True})
    ex = executions(env, fn)
    loaded, _ = ex.start("m", {}, name="s1")
    stopped = ex.stop(loaded.id, "Operator.Stop", "maintenance")
    assert stopped.status == "ABORTED" and stopped.machine.error == "Operator.Stop"
    with pytest.raises(UsageError, match="not RUNNING"):
        ex.stop(loaded.id)
    redriven = ex.redrive(loaded.id)
    assert redriven.status == "RUNNING"
    done = ex.run_until_settled(loaded.id, timeout=30)
    assert done.status == "SUCCEEDED"
    types = [e.type for e in done.history]
    assert types.count("ExecutionRedriven") == 1 and types.count("PassStateEntered") == 1  # Prepare ran once
    assert ex.describe(loaded.id)["redriveCount"] == 1


def test_redrive_reruns_only_the_failed_state(env: tuple[EventStore, Registry]) -> None:
    fn = Lambda(TaskError("Lambda.Boom", "first attempt"), {"ok": True})
    ex = executions(env, fn)
    loaded, _ = ex.start("m", {}, name="r1")
    failed = ex.run_until_settled(loaded.id, timeout=30)
    assert (failed.status, failed.machine.error) == ("FAILED", "Lambda.Boom")
    with pytest.raises(UsageError, match="SUCCEEDED"):
        ex.redrive(ex.run_until_settled(ex.start("m", {}, name="ok")[0].id, timeout=30).id)
    done = ex.run_until_settled(ex.redrive(loaded.id).id, timeout=30)
    assert done.status == "SUCCEEDED" and len(fn.calls) == 3  # r1 twice, ok once
    assert [e.type for e in done.history].count("PassStateEntered") == 1


def test_reset_of_a_failed_execution_then_succeeds(env: tuple[EventStore, Registry]) -> None:
    fn = Lambda({"ok": False}, {"ok": True})
    ex = executions(env, fn)
    old = ex.run_until_settled(ex.start("m", {"n": 1}, name="f1")[0].id, timeout=30)
    assert (old.status, old.machine.error) == ("FAILED", "Work.Broken")
    scheduled = next(e.id for e in old.history if e.type == "TaskScheduled")
    before = [e.to_aws() for e in old.history]
    new = ex.reset(old.id, scheduled, name="f1-retry", by="bob")
    assert new.id == "m:f1-retry" and new.history[-1].type == "ExecutionReset"
    assert new.history[-1].details["executionArn"] == old.id
    done = ex.run_until_settled(new.id, timeout=30)
    assert done.status == "SUCCEEDED" and done.machine.output["work"] == {"ok": True}
    # the old execution is untouched, and both point at each other
    assert [e.to_aws() for e in executions(env, fn).load(old.id).history] == before
    assert ex.describe(old.id)["resetTo"] == [{"execution": "m:f1-retry", "event": scheduled, "by": "bob"}]
    lineage = ex.lineage(new.id)
    assert lineage["resetFrom"] == {"execution": "m:f1", "event": scheduled}
    assert lineage["version"]["number"] == 1 and lineage["version"]["sha256"]
    with pytest.raises(UsageError, match="between 1 and"):
        ex.reset(old.id, 999)


def test_pending_task_is_answered_from_outside(env: tuple[EventStore, Registry]) -> None:
    from orchestrator.executions.tasks import PENDING

    seen: list[TaskContext] = []

    def gate(context: TaskContext) -> Any:
        seen.append(context)
        context.record("ApprovalRequested", {"revision": "D1"})
        return PENDING

    store, registry = env
    ex = Executions(store, registry, executors={"arn": gate})
    loaded, _ = ex.start("m", {"x": 1}, name="gated", started_by="ada")
    waiting = ex.run_until_settled(loaded.id, timeout=1)
    assert waiting.status == "RUNNING"
    assert len(seen) == 1 and seen[0].identity == "ada"
    token = seen[0].task.id
    assert [t.id for t in waiting.machine.pending_tasks()] == [token]
    assert "ApprovalRequested" in [e.type for e in waiting.history]
    with pytest.raises(Exception, match="no pending task"):
        ex.send_task_success(loaded.id, "nope", {})
    ex.send_task_success(loaded.id, token, {"ok": True, "by": "bob"})
    done = ex.run_until_settled(loaded.id, timeout=30)
    assert done.status == "SUCCEEDED"
    assert done.machine.output["work"] == {"ok": True, "by": "bob"}
    assert len(seen) == 1  # the gate ran once; the answer came from outside
