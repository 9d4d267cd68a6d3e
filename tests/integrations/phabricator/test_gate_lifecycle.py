"""What happens to an approval gate after it stops waiting, end to end through the webhook endpoint on
SQLite and PostgreSQL.

A new diff after the release (``ResetOnNewDiff``): the task cannot be made pending again, so the
approval is revoked: ``ApprovalRejected`` with ``Phabricator.DiffChanged`` in the execution, which
``AbortOnNewDiff`` also stops. ``TimeoutSeconds`` on the gate: ``States.Timeout`` fires from the
timers queue and is catchable; the gates index closes the gate, and a late accept changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fakes.phorge import FakePhorge, Revision

from orchestrator.config import Config, ConfigError
from orchestrator.executions.tasks import PENDING, TaskContext
from orchestrator.integrations.phabricator import gate_answers, gate_decisions, gate_index, reviews
from orchestrator.integrations.phabricator.conduit import Conduit
from orchestrator.integrations.phabricator.settings import Settings
from orchestrator.registry.service import Registry

from .harness import Stack, close_stack, make_config, open_stack
from .test_flow import details, gate_open, history_types, status_of, waiting_for_approval


def index_types(stack: Stack) -> list[str]:
    return [r.type for r in stack.runtime.store.read_stream(gate_index.GATES_STREAM)]


def closed_outcome(stack: Stack, execution: str) -> str | None:
    for record in stack.runtime.store.read_stream(gate_index.GATES_STREAM):
        if record.type == "GateClosed" and record.data["execution"] == execution:
            return str(record.data["outcome"])
    return None


def hold_deploy(stack: Stack) -> list[TaskContext]:
    """Make ``Deploy`` (the state after the gate) wait, so the execution still runs after the release."""
    held: list[TaskContext] = []

    def deploy(context: TaskContext) -> Any:
        held.append(context)
        return PENDING

    stack.runtime.executors["reflow"] = deploy
    return held


def released_and_deploying(stack: Stack, held: list[TaskContext]) -> tuple[Revision, str]:
    phorge = stack.phorge
    revision, execution = waiting_for_approval(stack, "Release 3.0")
    stack.post(phorge.webhook_body(revision.id, phorge.accept(revision.id, "carol")))
    stack.drain(lambda: bool(held) and "GateReleased" in index_types(stack))
    assert status_of(stack, execution) == "RUNNING"
    return revision, execution


def test_a_new_diff_after_the_release_revokes_the_approval_while_the_run_goes_on(stack: Stack) -> None:
    held = hold_deploy(stack)
    revision, execution = released_and_deploying(stack, held)
    approved = revision.diff
    stack.post(stack.phorge.webhook_body(revision.id, stack.phorge.update_diff(revision.id)))
    stack.drain(lambda: closed_outcome(stack, execution) is not None)
    assert closed_outcome(stack, execution) == "revoked"
    (revoked,) = details(stack, execution, "ApprovalRejected")
    assert revoked["error"] == "Phabricator.DiffChanged"
    assert (revoked["approver"], revoked["diff"], revoked["newDiff"], revoked["by"]) == (
        "carol",
        approved,
        revision.diff,
        "alice",
    )
    assert "does not cover it" in revoked["cause"]
    lineage = stack.runtime.executions.lineage(execution)
    assert [(t["type"], t.get("error")) for t in lineage["tasks"] if t["type"].startswith("Approval")] == [
        ("ApprovalGranted", None),
        ("ApprovalRejected", "Phabricator.DiffChanged"),
    ]
    assert status_of(stack, execution) == "RUNNING"  # recorded only: AbortOnNewDiff is off
    stack.post(stack.phorge.webhook_body(revision.id, stack.phorge.update_diff(revision.id)))
    stack.settle()
    assert len(details(stack, execution, "ApprovalRejected")) == 1  # the watch ended with the revocation
    (deploy,) = held
    stack.runtime.executions.send_task_success(execution, deploy.task.id, {"deployed": True})
    assert status_of(stack, execution) == "SUCCEEDED"


def test_a_new_diff_seen_while_a_concurrent_release_has_not_reached_the_index_is_still_revoked(
    stack: Stack,
) -> None:
    held = hold_deploy(stack)
    phorge = stack.phorge
    revision, execution = waiting_for_approval(stack, "Release 3.3")
    phorge.accept(revision.id, "carol")
    # a worker releases the gate and stalls before writing GateReleased into the index
    conduit = Conduit(phorge.url, phorge.token)
    try:
        view = reviews.fetch(conduit, number=revision.id)
    finally:
        conduit.close()
    (gate,) = gate_index.open_gates(stack.runtime.store)
    decision = gate_decisions.decide(gate, view, lambda project: set())
    assert gate_answers.answer(stack.runtime.executions, gate, decision) == "released"
    stack.drain(lambda: bool(held))
    # meanwhile a new diff: its delivery finds the gate "waiting" in the index, its task gone
    stack.post(phorge.webhook_body(revision.id, phorge.update_diff(revision.id)))
    stack.drain(lambda: closed_outcome(stack, execution) is not None)
    assert closed_outcome(stack, execution) == "revoked"
    assert [r["error"] for r in details(stack, execution, "ApprovalRejected")] == ["Phabricator.DiffChanged"]
    gate_index.release_gate(stack.runtime.store, gate, view.diff, "carol")  # the stalled worker resumes
    assert gate_index.read_index(stack.runtime.store).released == []


@pytest.fixture
def aborting(database_url: str, env: FakePhorge) -> Iterator[Stack]:
    stack = open_stack(database_url, env, make_config(abort_on_new_diff=True))
    try:
        yield stack
    finally:
        close_stack(stack)


def test_with_abort_on_new_diff_a_new_diff_after_the_release_stops_the_run(aborting: Stack) -> None:
    held = hold_deploy(aborting)
    revision, execution = released_and_deploying(aborting, held)
    aborting.post(aborting.phorge.webhook_body(revision.id, aborting.phorge.update_diff(revision.id)))
    aborting.drain(lambda: status_of(aborting, execution) == "ABORTED")
    described = aborting.runtime.executions.describe(execution)
    assert described["error"] == "Phabricator.DiffChanged"
    assert revision.diff in described["cause"]
    assert [r["error"] for r in details(aborting, execution, "ApprovalRejected")] == [
        "Phabricator.DiffChanged"
    ]
    assert history_types(aborting, execution)[-1] == "ExecutionAborted"
    aborting.drain(lambda: closed_outcome(aborting, execution) == "aborted")
    aborting.drain(lambda: bool(aborting.phorge.comments))
    assert (
        "ABORTED" in aborting.phorge.comments[0][1]
        and "Phabricator.DiffChanged" in aborting.phorge.comments[0][1]
    )


def test_without_reset_on_new_diff_the_gate_closes_at_the_release_and_a_new_diff_changes_nothing(
    database_url: str, env: FakePhorge
) -> None:
    stack = open_stack(database_url, env, make_config(reset_on_new_diff=False))
    try:
        held = hold_deploy(stack)
        phorge = stack.phorge
        revision, execution = waiting_for_approval(stack, "Release 3.1")
        stack.post(phorge.webhook_body(revision.id, phorge.accept(revision.id, "carol")))
        stack.drain(lambda: bool(held) and closed_outcome(stack, execution) is not None)
        assert closed_outcome(stack, execution) == "released"
        assert index_types(stack) == ["GateOpened", "GateClosed"]
        stack.post(phorge.webhook_body(revision.id, phorge.update_diff(revision.id)))
        stack.settle()
        assert details(stack, execution, "ApprovalRejected") == []
        assert status_of(stack, execution) == "RUNNING"
    finally:
        close_stack(stack)


TIMED: dict[str, Any] = {
    "StartAt": "Approve",
    "States": {
        "Approve": {
            "Type": "Task",
            "Resource": "phabricator:approval",
            "Parameters": {"Revision.$": "$.revision", "Reviewers": ["carol"]},
            "TimeoutSeconds": 1,
            "ResultPath": "$.approval",
            "Catch": [{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.timeout", "Next": "TooLate"}],
            "Next": "Deploy",
        },
        "Deploy": {"Type": "Task", "Resource": "reflow:deploy", "End": True},
        "TooLate": {"Type": "Pass", "Result": "nobody approved in time", "ResultPath": "$.note", "End": True},
    },
}


def test_a_gate_with_timeout_seconds_times_out_catchably_and_a_late_accept_changes_nothing(
    stack: Stack,
) -> None:
    Registry(stack.runtime.store).publish("timed", TIMED, published_by="test")
    phorge = stack.phorge
    revision = phorge.create_revision("alice", "Release 3.2", ["carol"])
    loaded, _ = stack.runtime.executions.start("timed", {"revision": f"D{revision.id}"}, name="waits")
    execution = loaded.id
    stack.drain(lambda: gate_open(stack, execution))
    stack.drain(lambda: status_of(stack, execution) == "SUCCEEDED", timeout=120)
    output = stack.runtime.executions.describe(execution)["output"]
    assert output["timeout"]["Error"] == "States.Timeout"
    assert output["note"] == "nobody approved in time"
    assert "TaskTimedOut" in history_types(stack, execution)
    stack.drain(lambda: closed_outcome(stack, execution) is not None)  # the reconcile loop closes it
    assert closed_outcome(stack, execution) == "gone"
    assert gate_index.read_index(stack.runtime.store).waiting == []
    before = history_types(stack, execution)
    stack.post(phorge.webhook_body(revision.id, phorge.accept(revision.id, "carol")))
    stack.settle()
    assert history_types(stack, execution) == before
    assert details(stack, execution, "ApprovalGranted") == []
    assert [d for d in stack.deployed if d["execution"] == execution] == []  # (the trigger's own run did)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"abort_on_new_diff": "yes"}, "phabricator.abort_on_new_diff: must be true or false"),
        (
            {"abort_on_new_diff": True, "reset_on_new_diff": False},
            "phabricator.abort_on_new_diff: needs reset_on_new_diff = true",
        ),
    ],
)
def test_abort_on_new_diff_settings_are_checked(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        Settings.from_config(Config({"phabricator": table}), {})


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"AbortOnNewDiff": "yes"}, "AbortOnNewDiff must be true or false"),
        ({"AbortOnNewDiff": True, "ResetOnNewDiff": False}, "AbortOnNewDiff needs ResetOnNewDiff"),
    ],
)
def test_bad_new_diff_parameters_fail_the_gate_saying_why(
    stack: Stack, parameters: dict[str, Any], message: str
) -> None:
    definition = {
        "StartAt": "Approve",
        "States": {
            "Approve": {
                "Type": "Task",
                "Resource": "phabricator:approval",
                "Parameters": {"Revision": "D1", **parameters},
                "End": True,
            }
        },
    }
    Registry(stack.runtime.store).publish("badgate", definition, published_by="test")
    loaded, _ = stack.runtime.executions.start("badgate", {}, name="bad")
    stack.drain(lambda: status_of(stack, loaded.id) == "FAILED")
    described = stack.runtime.executions.describe(loaded.id)
    assert described["error"] == "Phabricator.InvalidParameters"
    assert message in described["cause"]
