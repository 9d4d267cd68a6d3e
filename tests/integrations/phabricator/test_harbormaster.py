"""Harbormaster "Make HTTP Request" build steps start a run whose result is sent back with
``harbormaster.sendmessage``; a target Conduit does not know starts nothing; a report that fails
while Conduit is down is posted on retry. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fakes.phorge import FakePhorge

from orchestrator.integrations.phabricator import inbox, reports
from orchestrator.registry.service import Registry

from .harness import Stack, close_stack, make_config, open_stack
from .test_flow import status_of

CI = {
    "StartAt": "Check",
    "States": {
        "Check": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.harbormaster.diff", "NumericEquals": 13, "Next": "Broken"}],
            "Default": "Fine",
        },
        "Fine": {"Type": "Succeed"},
        "Broken": {"Type": "Fail", "Error": "CI.Broken", "Cause": "diff 13 never builds"},
    },
}


@pytest.fixture
def ci(database_url: str, env: FakePhorge) -> Iterator[Stack]:
    stack = open_stack(database_url, env, make_config(harbormaster={"start": "ci:prod"}))
    Registry(stack.runtime.store).publish("ci", CI, published_by="test")
    stack.runtime.registry.set_alias("ci", "prod", [(1, None)], by="test")
    try:
        yield stack
    finally:
        close_stack(stack)


def build_step(stack: Stack, target: str, revision: int, diff: int) -> httpx.Response:
    # what Phorge's "Make HTTP Request" step sends: POST, empty body, no signature
    return httpx.post(
        f"{stack.server.url}/hooks/harbormaster",
        params={"target": target, "revision": str(revision), "diff": str(diff), "build": "1"},
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


@pytest.mark.parametrize(("diff", "outcome"), [(4, "pass"), (13, "fail")])
def test_a_build_step_runs_and_its_result_is_sent_to_the_waiting_target(
    ci: Stack, diff: int, outcome: str
) -> None:
    target = ci.phorge.add_build_target()
    assert build_step(ci, target, 1, diff).json()["status"] == "accepted"
    ci.drain(lambda: bool(ci.phorge.messages))
    (message,) = ci.phorge.messages
    assert (message["receiver"], message["type"]) == (target, outcome)
    assert ci.phorge.targets[target]["status"] == f"target/{'passed' if outcome == 'pass' else 'failed'}"
    execution = message["unit"][0]["name"]
    assert ci.runtime.executions.lineage(execution)["trigger"]["target"] == target
    assert ci.runtime.executions.describe(execution)["input"]["revision"]["id"] == "D1"


def test_a_target_conduit_does_not_know_starts_nothing(ci: Stack) -> None:
    response = build_step(ci, "PHID-HMBT-doesnotexist00000000", 1, 4)
    assert response.status_code == 200
    ci.settle()
    assert ci.runtime.executions.list() == []
    (stream,) = [r for r in ci.runtime.store.read_all(0, 1000) if r.type == "DeliveryProcessed"]
    assert stream.data["outcome"] == "unknown-target"


def test_a_report_that_fails_while_conduit_is_down_is_posted_on_retry(ci: Stack) -> None:
    target = ci.phorge.add_build_target()
    build_step(ci, target, 1, 4)
    ci.drain(lambda: any(e["status"] == "SUCCEEDED" for e in ci.runtime.executions.list()))
    (execution,) = [e["execution"] for e in ci.runtime.executions.list()]
    ci.phorge.fail_next(3)  # every attempt of the client's first call
    ci.drain(lambda: bool(ci.phorge.messages))
    types = [r.type for r in ci.runtime.store.read_stream(reports.report_stream(execution))]
    assert types == ["ReportRequested", "ReportRetryScheduled", "ReportPosted"]
    assert status_of(ci, execution) == "SUCCEEDED"
    ci.settle()
    assert len(ci.phorge.messages) == 1
    assert ci.runtime.store.claim("peek", [inbox.QUEUE], 10, 1.0) == []
