"""End to end through the real HTTP endpoint: a revision accepted in the fake Phorge starts an
execution, an approval gate waits for a second accept, the next Task runs under the approver's
identity, and the outcome is posted back as a comment. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from fakes.phorge import Revision

from orchestrator.integrations.phabricator import inbox, reviews, webhook

from .harness import Stack


def run_of(revision: Revision) -> str:
    """The execution a trigger starts for the revision's current diff (one per accepted diff)."""
    return f"release:D{revision.id}-{revision.diff.removeprefix('PHID-DIFF-')}"


def history_types(stack: Stack, execution: str) -> list[str]:
    return [e.type for e in stack.runtime.executions.history(execution)]


def status_of(stack: Stack, execution: str) -> str | None:
    try:
        return str(stack.runtime.executions.describe(execution)["status"])
    except Exception:
        return None


def gate_open(stack: Stack, execution: str) -> bool:
    return status_of(stack, execution) == "RUNNING" and "ApprovalRequested" in history_types(stack, execution)


def waiting_for_approval(
    stack: Stack, title: str, reviewers: list[str] | None = None
) -> tuple[Revision, str]:
    """A revision of ``title`` that bob accepted, and the release run it started, waiting at its gate."""
    phorge = stack.phorge
    revision = phorge.create_revision("alice", title, reviewers or ["bob", "carol"])
    stack.post(phorge.webhook_body(revision.id, phorge.accept(revision.id, "bob")))
    execution = run_of(revision)
    stack.drain(lambda: gate_open(stack, execution))
    return revision, execution


def details(stack: Stack, execution: str, kind: str) -> list[dict[str, Any]]:
    return [dict(e.details) for e in stack.runtime.executions.history(execution) if e.type == kind]


def test_accept_starts_a_run_a_second_accept_releases_the_gate_and_the_outcome_is_posted(
    stack: Stack,
) -> None:
    phorge = stack.phorge
    revision = phorge.create_revision("alice", "Release 1.2", ["bob", "carol"])
    response = stack.post(phorge.webhook_body(revision.id, phorge.accept(revision.id, "bob")))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "accepted"
    execution = run_of(revision)
    stack.drain(lambda: gate_open(stack, execution))

    assert stack.runtime.executions.lineage(execution)["trigger"]["approver"] == "bob"
    started = stack.runtime.executions.describe(execution)
    assert started["input"]["revision"]["id"] == f"D{revision.id}"
    assert started["input"]["revision"]["approver"] == "bob"
    assert started["startedBy"] == "phabricator:bob"

    response = stack.post(phorge.webhook_body(revision.id, phorge.accept(revision.id, "carol", "ship it")))
    assert response.status_code == 200
    stack.drain(lambda: status_of(stack, execution) == "SUCCEEDED")

    assert stack.deployed == [{"execution": execution, "identity": "carol"}]
    granted = details(stack, execution, "ApprovalGranted")
    assert [g["approver"] for g in granted] == ["carol"]
    lineage = stack.runtime.executions.lineage(execution)
    assert [t["approver"] for t in lineage["tasks"] if t["type"] == "ApprovalGranted"] == ["carol"]
    output = stack.runtime.executions.describe(execution)["output"]
    assert output["approval"]["approver"] == "carol"
    assert output["approval"]["revision"] == f"D{revision.id}"
    stack.drain(lambda: bool(phorge.comments))
    (where, text), *_ = phorge.comments
    assert where == f"D{revision.id}"
    assert "SUCCEEDED" in text
    assert f"https://orchestrator.example.com/executions/release%3A{execution.split(':', 1)[1]}" in text


def inbox_events(stack: Stack, body: bytes) -> list[str]:
    key = webhook.parse(body).key
    return [r.type for r in stack.runtime.store.read_stream(inbox.inbox_stream(key))]


def test_the_same_delivery_twice_and_out_of_order_starts_one_run_released_by_the_later_accept(
    stack: Stack,
) -> None:
    phorge = stack.phorge
    revision = phorge.create_revision("alice", "Release 1.3", ["bob", "carol"])
    by_bob = phorge.webhook_body(revision.id, phorge.accept(revision.id, "bob"))
    by_carol = phorge.webhook_body(revision.id, phorge.accept(revision.id, "carol"))
    execution = run_of(revision)
    # carol's accept arrives first, and twice; bob's (the transition into accepted) after it, twice too
    assert [stack.post(b).json()["status"] for b in (by_carol, by_carol)] == ["accepted", "duplicate"]
    stack.settle()
    assert status_of(stack, execution) is None  # no transition into accepted delivered yet
    assert [stack.post(b).json()["status"] for b in (by_bob, by_bob)] == ["accepted", "duplicate"]
    stack.drain(lambda: status_of(stack, execution) == "SUCCEEDED")
    stack.settle()
    assert [e["identity"] for e in stack.deployed] == ["carol"]
    assert len(stack.runtime.executions.list(state_machine="release")) == 1
    assert inbox_events(stack, by_bob) == ["WebhookReceived", "DeliveryProcessed"]
    facts = [r.type for r in stack.runtime.store.read_stream(reviews.revision_stream(revision.phid))]
    assert facts.count("RevisionAccepted") == 2  # bob's and carol's, once each
    assert "RevisionStatusChanged" in facts


def test_a_delivery_whose_processing_fails_while_conduit_is_down_succeeds_on_retry(stack: Stack) -> None:
    phorge = stack.phorge
    revision = phorge.create_revision("alice", "Release 1.4", ["bob", "carol"])
    body = phorge.webhook_body(revision.id, phorge.accept(revision.id, "bob"))
    phorge.fail_next(4)  # more than the client's three attempts: the first processing fails
    assert stack.post(body).status_code == 200  # stored before Conduit is asked anything
    execution = run_of(revision)
    stack.drain(lambda: gate_open(stack, execution))
    events = inbox_events(stack, body)
    assert events[0] == "WebhookReceived"
    assert "DeliveryRetryScheduled" in events
    assert events[-1] == "DeliveryProcessed"
    retry = next(
        r
        for r in stack.runtime.store.read_stream(inbox.inbox_stream(webhook.parse(body).key))
        if r.type == "DeliveryRetryScheduled"
    )
    assert "HTTP 500" in retry.data["error"] and retry.data["attempt"] == 1


def test_changes_requested_fail_the_gate_with_a_catchable_rejected(stack: Stack) -> None:
    phorge = stack.phorge
    revision, execution = waiting_for_approval(stack, "Release 1.5")
    stack.post(phorge.webhook_body(revision.id, phorge.request_changes(revision.id, "carol")))
    stack.drain(lambda: status_of(stack, execution) == "FAILED")
    described = stack.runtime.executions.describe(execution)
    assert described["error"] == "Release.Refused"  # caught Phabricator.Rejected, went to the Fail state
    rejected = details(stack, execution, "ApprovalRejected")
    assert [(r["error"], r["by"]) for r in rejected] == [("Phabricator.Rejected", "carol")]
    failed = details(stack, execution, "TaskFailed")
    assert failed[0]["error"] == "Phabricator.Rejected"
    assert stack.deployed == []
    stack.drain(lambda: bool(phorge.comments))
    assert "FAILED" in phorge.comments[0][1] and "Release.Refused" in phorge.comments[0][1]


def test_an_abandoned_revision_fails_the_gate_with_abandoned(stack: Stack) -> None:
    phorge = stack.phorge
    revision, execution = waiting_for_approval(stack, "Release 1.6")
    stack.post(phorge.webhook_body(revision.id, phorge.abandon(revision.id)))
    stack.drain(lambda: status_of(stack, execution) == "FAILED")
    assert details(stack, execution, "TaskFailed")[0]["error"] == "Phabricator.Abandoned"
    assert details(stack, execution, "ApprovalRejected")[0]["by"] == "alice"


def test_an_accept_of_an_older_diff_does_not_release_the_gate(stack: Stack) -> None:
    phorge = stack.phorge
    revision, execution = waiting_for_approval(stack, "Release 1.7")
    # carol accepts, then alice uploads a new diff, before any of it is processed
    stack.post(phorge.webhook_body(revision.id, phorge.accept(revision.id, "carol")))
    stack.post(phorge.webhook_body(revision.id, phorge.update_diff(revision.id)))
    stack.settle()
    assert status_of(stack, execution) == "RUNNING"
    facts = [r.type for r in stack.runtime.store.read_stream(reviews.revision_stream(revision.phid))]
    assert "RevisionUpdated" in facts
    stack.post(phorge.webhook_body(revision.id, phorge.accept(revision.id, "carol")))
    stack.drain(lambda: status_of(stack, execution) == "SUCCEEDED")
    assert details(stack, execution, "ApprovalGranted")[0]["diff"] == revision.diff


def test_a_missed_webhook_delays_the_approval_but_the_reconcile_loop_finds_it(stack: Stack) -> None:
    phorge = stack.phorge
    revision, execution = waiting_for_approval(stack, "Release 1.8")
    phorge.accept(revision.id, "carol")  # Herald's delivery of this never arrives
    stack.drain(lambda: status_of(stack, execution) == "SUCCEEDED")
    assert [e["identity"] for e in stack.deployed] == ["carol"]
    # released, the gate is watched for a new diff until its execution ends; the loop then closes it
    stack.drain(lambda: stack.runtime.store.read_stream("phabricator-gates")[-1].type == "GateClosed")
    index = stack.runtime.store.read_stream("phabricator-gates")
    assert [r.type for r in index] == ["GateOpened", "GateReleased", "GateClosed"]
    assert index[-1].data["outcome"] == "ended"
