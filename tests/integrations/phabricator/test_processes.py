"""End to end through the real processes: ``orchestrator serve`` takes the fake Phorge's signed
webhooks, ``orchestrator worker`` (with the ``deploy`` function plugged in) runs everything else, on
SQLite and PostgreSQL; AWS is the moto server, so what STS was asked is read back from its recorder.

A revision accepted in the fake starts ``release:prod`` (a trigger rule); its approval gate waits with
no worker busy until carol accepts too; the ``deploy`` Task then runs under the release-deployer role
assumed with carol as ``SourceIdentity``; the outcome is commented back on the revision with a link
to the execution. Deliveries sent twice and out of order start one run; a delivery whose processing
fails while Conduit is down is processed on retry; a worker killed with SIGKILL while a gate waits
is replaced, and the approval still releases the gate.

See :mod:`.processes` for the configuration and the child processes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fakes.phorge import CAPTURED_KEY, FakePhorge, Revision, WebhookSender, sign

from orchestrator.config import Config
from orchestrator.integrations.aws.naming import TAG_EXECUTION, TAG_REVISION, TAG_STATE_MACHINE
from orchestrator.integrations.phabricator import inbox, webhook
from orchestrator.runtime import build_runtime
from orchestrator.store import EventStore

from ..conftest import MotoServer, RecordedRequest
from .processes import DEPLOYER, HMAC_KEY, PUBLIC_URL, RELEASE, Processes, run_of, trust_policy, write_config


class World:
    """One test's processes (serve and the worker started), the fake Phorge and moto."""

    def __init__(self, processes: Processes, phorge: FakePhorge, aws: MotoServer, url: str) -> None:
        self.processes = processes
        self.phorge = phorge
        self.aws = aws
        self.sender = WebhookSender(f"{url}/hooks/phabricator", HMAC_KEY)

    def send(self, revision: Revision, transactions: list[str]) -> str:
        """Deliver Herald's webhook for ``transactions``; the endpoint's status (accepted, duplicate)."""
        response = self.sender.send(self.phorge.webhook_body(revision.id, transactions))
        assert response.status_code == 200, response.text
        return str(response.json()["status"])

    def assumed(self) -> list[RecordedRequest]:
        return self.aws.requests("AssumeRole")


@pytest.fixture
def world(database_url: str, phorge: FakePhorge, aws: MotoServer, tmp_path: Path) -> Iterator[World]:
    aws.client("iam").create_role(
        RoleName=DEPLOYER.rsplit("/", 1)[1], AssumeRolePolicyDocument=trust_policy()
    )
    config = write_config(tmp_path / "orchestrator.toml", aws, phorge)
    # the schema and the published definition (checked against the configuration's role map), made
    # here rather than by two more commands: the processes under test are serve and the worker
    with EventStore.from_url(database_url, auto_upgrade=True) as store:
        registry = build_runtime(store, Config.load(config)).registry
        registry.publish("release", RELEASE, published_by="release-manager")
        registry.set_alias("release", "prod", [(1, None)], by="release-manager")
    processes = Processes(tmp_path, database_url, config, phorge)
    try:
        url = processes.serve()
        processes.worker()
        built = World(processes, phorge, aws, url)
        try:
            yield built
        finally:
            built.sender.close()
    finally:
        processes.close()


def accepted_by_bob(world: World, title: str) -> tuple[Revision, str]:
    """A revision bob accepts (carol, the gate's reviewer, has not yet); its run, waiting at the gate."""
    revision = world.phorge.create_revision("alice", title, ["bob", "carol"])
    assert world.send(revision, world.phorge.accept(revision.id, "bob")) == "accepted"
    execution = run_of(revision)
    world.processes.wait(lambda: world.processes.gate_open(execution), f"{execution} to wait at its gate")
    return revision, execution


def of_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [event for event in events if event["type"] == kind]


def tags_of(request: RecordedRequest) -> dict[str, str]:
    params = request.params
    count = sum(1 for key in params if key.startswith("Tags.member.") and key.endswith(".Key"))
    return {params[f"Tags.member.{i}.Key"]: params[f"Tags.member.{i}.Value"] for i in range(1, count + 1)}


def test_an_accepted_revision_runs_released_by_a_second_accept_under_the_approvers_role_and_reports_back(
    world: World,
) -> None:
    processes, phorge = world.processes, world.phorge
    revision, execution = accepted_by_bob(world, "Release 2.0")
    # the key is the one from the environment: a delivery signed with any other is refused
    forged = phorge.webhook_body(revision.id, [revision.transactions[0]["phid"]])
    assert world.sender.send(forged, sign(CAPTURED_KEY, forged)).status_code == 401

    # waiting at the gate, nobody is busy: the worker reports itself idle, no task is leased
    opened = of_type(processes.history(execution), "ApprovalRequested")[0]["timestamp"]
    seen: list[list[dict[str, Any]]] = []

    def idle_report_after_the_gate_opened() -> bool:
        rows = processes.cli_json("workers", "--json")
        # the registry's heartbeat is whole seconds (rounded down): later than the opening for sure
        fresh = [row for row in rows if datetime.fromisoformat(row["heartbeat"]).timestamp() > opened]
        seen.extend(row["current"] for row in fresh)
        return any(row["current"] == [] for row in fresh)

    processes.wait(idle_report_after_the_gate_opened, "the worker to report itself idle")
    assert not [item for current in seen for item in current if item["kind"] == "task"], seen
    assert processes.store.queue_depths(["tasks"])["tasks"].leased == 0
    assert world.assumed() == []  # the gate ran under no role

    assert world.send(revision, phorge.accept(revision.id, "carol", "ship it")) == "accepted"
    processes.wait_for_status(execution, "SUCCEEDED")

    # the deploy ran as a release-deployer session STS issued for carol
    [call] = world.assumed()
    history = processes.history(execution)
    [role] = of_type(history, "RoleAssumed")
    assert call.params["RoleArn"] == role["roleArn"] == DEPLOYER
    assert call.params["SourceIdentity"] == role["sourceIdentity"] == "carol"
    assert call.params["RoleSessionName"] == role["sessionName"]
    assert role["stateName"] == "Deploy"
    assert tags_of(call)[TAG_EXECUTION] == execution
    assert tags_of(call)[TAG_STATE_MACHINE] == "release"
    assert tags_of(call)[TAG_REVISION] == f"D{revision.id}"
    output = processes.cli_json("describe", execution, "--json")["output"]
    assert output["deployed"]["identity"] == "carol"
    assert output["deployed"]["callerArn"] == role["assumedRoleArn"]
    assert role["assumedRoleArn"] == (
        f"arn:aws:sts::123456789012:assumed-role/release-deployer/{role['sessionName']}"
    )
    assert output["deployed"]["parameters"] == {"revision": f"D{revision.id}", "approver": "carol"}
    assert output["approval"]["approver"] == "carol"

    # the outcome, commented back on the revision with the execution's link
    processes.wait(lambda: bool(phorge.comments), "the outcome to be posted back")
    [(where, text)] = phorge.comments
    assert where == f"D{revision.id}"
    assert f"`{execution}` **SUCCEEDED**" in text
    assert f"{PUBLIC_URL}/executions/{quote(execution, safe='')}" in text

    # lineage: revision -> approver -> version -> role session
    lineage = processes.cli_json("lineage", execution, "--json")
    assert lineage["trigger"]["revision"] == f"D{revision.id}"
    assert lineage["trigger"]["approver"] == "bob"  # whose accept started it
    assert lineage["version"]["number"] == 1
    assert lineage["version"]["publishedBy"] == "release-manager"
    assert lineage["alias"] == "prod"
    chain = [
        (task["type"], task.get("approver") or task.get("sourceIdentity"), task.get("sessionName"))
        for task in lineage["tasks"]
        if task["type"] in ("ApprovalGranted", "RoleAssumed")
    ]
    assert chain == [("ApprovalGranted", "carol", None), ("RoleAssumed", "carol", role["sessionName"])]


def inbox_of(world: World, revision: Revision, transactions: list[str]) -> list[str]:
    """The event types of the inbox stream of the delivery of ``transactions``."""
    key = webhook.parse(world.phorge.webhook_body(revision.id, transactions)).key
    return world.processes.events(inbox.inbox_stream(key))


def test_deliveries_sent_twice_out_of_order_or_while_conduit_is_down_start_one_run_each(world: World) -> None:
    processes, phorge = world.processes, world.phorge

    # bob's accept moves the revision to accepted; carol's arrives first, and twice; bob's then twice
    revision = phorge.create_revision("alice", "Release 2.1", ["bob", "carol"])
    by_bob, by_carol = phorge.accept(revision.id, "bob"), phorge.accept(revision.id, "carol")
    assert [world.send(revision, by_carol) for _ in range(2)] == ["accepted", "duplicate"]
    processes.wait(lambda: inbox_of(world, revision, by_carol)[-1] == "DeliveryProcessed", "carol's delivery")
    execution = run_of(revision)
    assert processes.status(execution) is None  # no transition into accepted delivered yet
    assert [world.send(revision, by_bob) for _ in range(2)] == ["accepted", "duplicate"]
    processes.wait_for_status(execution, "SUCCEEDED")  # carol's accept, already there, opens the gate
    assert inbox_of(world, revision, by_bob) == ["WebhookReceived", "DeliveryProcessed"]
    assert inbox_of(world, revision, by_carol) == ["WebhookReceived", "DeliveryProcessed"]
    started = processes.cli_json("executions", "list", "--state-machine", "release", "--json")
    assert [row["execution"] for row in started] == [execution]
    assert [call.params["SourceIdentity"] for call in world.assumed()] == ["carol"]
    processes.wait(lambda: len(phorge.comments) == 1, "the outcome to be posted back")  # Conduit idle

    # Conduit answers HTTP 500 to more calls than the client's own retries: the first processing of
    # the stored delivery fails, a later attempt succeeds and starts the run
    later = phorge.create_revision("alice", "Release 2.2", ["bob", "carol"])
    by_bob = phorge.accept(later.id, "bob")
    phorge.fail_next(4)
    assert world.send(later, by_bob) == "accepted"  # stored before Conduit is asked anything
    second = run_of(later)
    processes.wait(lambda: processes.gate_open(second), f"{second} to wait at its gate")
    events = inbox_of(world, later, by_bob)
    assert events[0] == "WebhookReceived" and events[-1] == "DeliveryProcessed"
    assert "DeliveryRetryScheduled" in events
    assert world.send(later, phorge.accept(later.id, "carol")) == "accepted"
    processes.wait_for_status(second, "SUCCEEDED")
    started = processes.cli_json("executions", "list", "--state-machine", "release", "--json")
    assert sorted(row["execution"] for row in started) == sorted([execution, second])


def test_a_worker_killed_while_a_gate_waits_is_replaced_and_the_approval_still_releases_it(
    world: World,
) -> None:
    processes, phorge = world.processes, world.phorge
    revision, execution = accepted_by_bob(world, "Release 2.3")
    [(_, doomed)] = [(name, p) for name, p in processes.running if name.startswith("worker")]
    doomed.kill()  # SIGKILL: no clean-up
    assert doomed.wait(30) < 0

    processes.worker()
    assert world.send(revision, phorge.accept(revision.id, "carol")) == "accepted"
    processes.wait_for_status(execution, "SUCCEEDED")
    [call] = world.assumed()
    assert call.params["SourceIdentity"] == "carol"
    [role] = of_type(processes.history(execution), "RoleAssumed")
    assert role["sourceIdentity"] == "carol" and role["sessionName"] == call.params["RoleSessionName"]
    processes.wait(lambda: bool(phorge.comments), "the outcome to be posted back")
    assert f"`{execution}` **SUCCEEDED**" in phorge.comments[0][1]
    [(name, _)] = [(n, p) for n, p in processes.running if n.startswith("worker") and p.poll() is None]
    assert execution in (processes.folder / f"{name}.log").read_text()  # the new worker ran the Deploy
