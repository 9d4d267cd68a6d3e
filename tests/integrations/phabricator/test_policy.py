"""Who may approve what: a role of the aws role map that requires an approval from
``#release-managers`` makes an accept from anyone else ``Phabricator.NotAuthorized``; and the publish
policy ``require_approved_revision`` through the real ``orchestrator publish`` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fakes.phorge import CAPTURED_KEY, FakePhorge

from orchestrator.config import Config
from orchestrator.integrations.phabricator import policy
from orchestrator.registry.service import Registry
from orchestrator.store import EventStore

from .harness import RELEASE, close_stack, make_config, open_stack
from .test_flow import details, status_of, waiting_for_approval

EXE = str(Path(sys.executable).with_name("orchestrator"))
DEPLOYER = "arn:aws:iam::123456789012:role/deployer"


def test_the_role_map_s_required_approval_comes_from_the_aws_integration() -> None:
    config = Config(
        {
            "aws": {
                "roles": [
                    {"state": "Deploy", "role_arn": DEPLOYER, "require_approval_from": "#release-managers"}
                ]
            }
        }
    )
    lookup = policy.default_lookup()
    assert lookup is not None
    assert policy.required_groups(config, "release", RELEASE, lookup) == ["#release-managers"]
    assert policy.required_groups(Config(), "release", RELEASE, lookup) == []


def test_an_accept_from_outside_the_required_project_is_not_authorized_and_does_not_release(
    database_url: str, env: FakePhorge
) -> None:
    env.add_project("release-managers", [env.user("carol")])
    base = make_config()
    config = Config(
        {
            "phabricator": dict(base.section("phabricator")),
            "aws": {
                "roles": [
                    {"state": "Deploy", "role_arn": DEPLOYER, "require_approval_from": "#release-managers"}
                ]
            },
        }
    )
    stack = open_stack(database_url, env, config)
    try:
        revision, execution = waiting_for_approval(stack, "Release 2.0", ["bob", "carol", "dave"])
        stack.post(env.webhook_body(revision.id, env.accept(revision.id, "dave")))
        stack.drain(lambda: bool(details(stack, execution, "ApprovalRejected")))
        stack.settle()
        assert status_of(stack, execution) == "RUNNING"
        refused = details(stack, execution, "ApprovalRejected")
        assert [(r["error"], r["approver"]) for r in refused] == [("Phabricator.NotAuthorized", "dave")]
        assert "#release-managers" in refused[0]["cause"]
        assert details(stack, execution, "ApprovalRequested")[0]["groups"] == ["#release-managers"]
        stack.post(env.webhook_body(revision.id, env.accept(revision.id, "carol")))
        stack.drain(lambda: status_of(stack, execution) == "SUCCEEDED")
        assert [e["identity"] for e in stack.deployed] == ["carol"]
        assert len(details(stack, execution, "ApprovalRejected")) == 1  # recorded once, not per look
    finally:
        close_stack(stack)


# ------------------------------------------------------------------------------------- publish policy
def publish(
    tmp_path: Path, phorge: FakePhorge, *args: str, policy_on: bool
) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "orchestrator.toml"
    config.write_text('[phabricator]\npublish_policy = "require_approved_revision"\n' if policy_on else "")
    definition = tmp_path / "hello.json"
    definition.write_text(json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}))
    env = {
        **os.environ,
        "ORCHESTRATOR_CONFIG": str(config),
        "ORCHESTRATOR_PHABRICATOR_URL": phorge.url,
        "ORCHESTRATOR_PHABRICATOR_TOKEN": phorge.token,
        "ORCHESTRATOR_PHABRICATOR_HMAC_KEY": CAPTURED_KEY,
    }
    return subprocess.run(
        [EXE, "publish", str(definition), "--database-url", f"sqlite:///{tmp_path / 'o.db'}", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def versions(tmp_path: Path) -> list[Any]:
    if not (tmp_path / "o.db").exists():
        return []
    with EventStore.from_url(f"sqlite:///{tmp_path / 'o.db'}") as store:
        try:
            return list(Registry(store).get("hello").versions)
        except Exception:
            return []


def test_publish_records_the_accepted_revision_and_its_approver(tmp_path: Path, phorge: FakePhorge) -> None:
    result = publish(tmp_path, phorge, "--revision", "D1", policy_on=False)  # D1: captured, accepted by bob
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert (out["revision"], out["approvedBy"]) == ("D1", "bob")
    (version,) = versions(tmp_path)
    assert (version.revision, version.approved_by) == ("D1", "bob")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give --revision"),
        (("--revision", "D{open}"), "is needs-review, not accepted"),
        (("--revision", "D999"), "unknown or not visible"),
        (("--revision", "D-1"), "--revision"),
    ],
)
def test_with_the_policy_on_publishing_without_an_accepted_revision_is_refused(
    tmp_path: Path, phorge: FakePhorge, args: tuple[str, ...], message: str
) -> None:
    pending = phorge.create_revision("alice", "Not yet reviewed", ["bob"])
    args = tuple(a.format(open=pending.id) for a in args)
    result = publish(tmp_path, phorge, *args, policy_on=True)
    assert result.returncode == 2, result.stdout
    assert message in result.stderr
    assert versions(tmp_path) == []


def test_with_the_policy_on_an_accepted_revision_publishes(tmp_path: Path, phorge: FakePhorge) -> None:
    revision = phorge.create_revision("alice", "Reviewed", ["carol"])
    phorge.accept(revision.id, "carol")
    result = publish(tmp_path, phorge, "--revision", f"D{revision.id}", policy_on=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["approvedBy"] == "carol"
