"""Task states under their IAM roles, end to end: durable executions on SQLite and PostgreSQL, STS and
IAM served by a real moto server over HTTP.

What STS received is read back from moto's request recorder, so the session name, source identity,
tags and duration asserted here are the ones that went over the wire.
"""

from __future__ import annotations

import calendar
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import structlog

from orchestrator.config import Config
from orchestrator.executions.tasks import TaskContext
from orchestrator.integrations import aws as aws_integration
from orchestrator.integrations.aws import clients, sessions
from orchestrator.integrations.aws.naming import (
    TAG_EXECUTION,
    TAG_REVISION,
    TAG_STATE_MACHINE,
    TAG_VERSION,
)
from orchestrator.integrations.aws.sessions import RoleSessions, SessionRequest
from orchestrator.runtime import Runtime, build_runtime
from orchestrator.store import EventStore

if TYPE_CHECKING:
    from tests.integrations.conftest import MotoServer, RecordedRequest

ACCOUNT = "123456789012"
DEPLOYER = f"arn:aws:iam::{ACCOUNT}:role/deployer"
READER = f"arn:aws:iam::{ACCOUNT}:role/reader"
LOCKED = f"arn:aws:iam::{ACCOUNT}:role/locked"
STS_NAME = re.compile(r"^[\w+=,.@-]{2,64}$", re.ASCII)


def trust(principal: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": principal},
                    "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
                }
            ],
        }
    )


def fn(name: str) -> str:
    """A Lambda function's ARN: the ``arn`` executor is the probe below."""
    return f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}"


class Probe:
    """A task executor that proves which AWS identity it runs under: it calls sts:GetCallerIdentity
    with the credentials the task got, through the same client factory the integrations use."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.environments: dict[str, dict[str, str] | None] = {}

    def __call__(self, context: TaskContext) -> Any:
        environment = context.role_environment
        self.environments[context.task.state_name] = environment
        if environment is None:
            return {"arn": None}
        identity = clients.client("sts", self.config, environment).get_caller_identity()
        return {"arn": identity["Arn"], "region": environment["AWS_DEFAULT_REGION"]}

    def secrets(self) -> set[str]:
        return {
            value
            for environment in self.environments.values()
            if environment
            for key, value in environment.items()
            if key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
        }


@pytest.fixture
def captured_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """Every structlog entry of the test, whatever an earlier test configured (a fresh logger for the
    sessions module, so a logger cached under another configuration cannot hide lines)."""
    previous = structlog.get_config()["wrapper_class"]
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    monkeypatch.setattr(sessions, "log", structlog.get_logger(sessions.__name__))
    with structlog.testing.capture_logs() as entries:
        yield entries
    structlog.configure(wrapper_class=previous)


def runtime_for(database_url: str, config: Config, probe: Probe) -> Iterator[Runtime]:
    store = EventStore.from_url(database_url, auto_upgrade=True)
    runtime = build_runtime(store, config)
    runtime.executors["arn"] = probe
    aws_integration.install(runtime)  # wraps the executor added after the first installation
    try:
        yield runtime
    finally:
        store.close()


def all_events_text(runtime: Runtime) -> str:
    records = runtime.store.read_all(0, 100_000)
    return json.dumps([[r.type, r.data, r.metadata] for r in records], default=str)


def tags_of(request: RecordedRequest) -> dict[str, str]:
    params = request.params
    count = sum(1 for key in params if key.startswith("Tags.member.") and key.endswith(".Key"))
    return {params[f"Tags.member.{i}.Key"]: params[f"Tags.member.{i}.Value"] for i in range(1, count + 1)}


def role_events(runtime: Runtime, execution: str) -> list[dict[str, Any]]:
    return [e.details for e in runtime.executions.history(execution) if e.type == "RoleAssumed"]


# ------------------------------------------------------------------------------ the happy path
RELEASE = {
    "StartAt": "Build",
    "States": {
        "Build": {"Type": "Task", "Resource": fn("build"), "ResultPath": "$.build", "Next": "Deploy"},
        "Deploy": {
            "Type": "Task",
            "Resource": fn("deploy"),
            "Credentials": {"RoleArn": DEPLOYER},
            "ResultPath": "$.deploy",
            "Next": "Verify",
        },
        "Verify": {
            "Type": "Task",
            "Resource": fn("verify"),
            "Credentials": {"RoleArn": DEPLOYER},
            "ResultPath": "$.verify",
            "Next": "Notify",
        },
        "Notify": {"Type": "Task", "Resource": fn("notify"), "ResultPath": "$.notify", "End": True},
    },
}
ROLE_MAP = f"""
session_duration = 1800

[[aws.roles]]
state = "Build"
role_arn = "{READER}"

[[aws.allow]]
state_machine = "release"
roles = ["{DEPLOYER}", "{READER}"]
"""


def test_tasks_run_under_their_roles_for_the_approver(
    aws: MotoServer, database_url: str, tmp_path: Path, captured_logs: list[dict[str, Any]]
) -> None:
    iam = aws.client("iam")
    iam.create_role(RoleName="deployer", AssumeRolePolicyDocument=trust(f"arn:aws:iam::{ACCOUNT}:root"))
    iam.create_role(RoleName="reader", AssumeRolePolicyDocument=trust(f"arn:aws:iam::{ACCOUNT}:root"))
    # ROLE_MAP's first line still belongs to the [aws] table write_config opens
    config = Config.load(aws.write_config(tmp_path / "orchestrator.toml", ROLE_MAP))
    probe = Probe(config)
    for runtime in runtime_for(database_url, config, probe):
        runtime.registry.publish("release", RELEASE)
        trigger = {"revision": "D42", "approver": "alice@example.com"}
        loaded, _ = runtime.executions.start(
            "release", {}, name="run-1", started_by="worker-2", trigger=trigger
        )
        done = runtime.executions.run_until_settled(loaded.id, timeout=120)
        assert done.status == "SUCCEEDED", done.machine.cause
        output = done.machine.output

        # what STS received: one AssumeRole per role; Verify reused Deploy's session
        calls = aws.requests("AssumeRole")
        assert [c.params["RoleArn"] for c in calls] == [READER, DEPLOYER]
        build_call, deploy_call = calls
        for call, state in ((build_call, "Build"), (deploy_call, "Deploy")):
            session = call.params["RoleSessionName"]
            assert STS_NAME.match(session) and session.startswith(f"run-1.{state}.0."), session
            assert call.params["SourceIdentity"] == "alice@example.com"  # the approver, not the starter
            assert call.params["DurationSeconds"] == "1800"
            assert tags_of(call) == {
                TAG_EXECUTION: "release:run-1",
                TAG_STATE_MACHINE: "release",
                TAG_VERSION: "1",
                TAG_REVISION: "D42",
            }
        assert build_call.params["RoleSessionName"] != deploy_call.params["RoleSessionName"]

        # the tasks really ran as those sessions
        build_session = build_call.params["RoleSessionName"]
        deploy_session = deploy_call.params["RoleSessionName"]
        assert output["build"] == {
            "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/reader/{build_session}",
            "region": "us-east-1",
        }
        assert output["deploy"]["arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/{deploy_session}"
        assert output["verify"] == output["deploy"]
        assert output["notify"] == {"arn": None}  # no role: the worker's own credentials
        assert probe.environments["Notify"] is None
        assert probe.environments["Verify"] == probe.environments["Deploy"]

        # the history says who ran what as whom, and nothing secret
        events = role_events(runtime, loaded.id)
        assert [(e["stateName"], e["roleArn"], e["sessionName"], e["reused"]) for e in events] == [
            ("Build", READER, build_session, False),
            ("Deploy", DEPLOYER, deploy_session, False),
            ("Verify", DEPLOYER, deploy_session, True),
        ]
        assert [e["roleFrom"] for e in events] == ["aws.roles[0]", "Credentials", "Credentials"]
        for event in events:
            assert event["sourceIdentity"] == "alice@example.com"
            assert event["assumedRoleArn"].endswith(f"/{event['sessionName']}")
            expires = calendar.timegm(time.strptime(event["expiration"], "%Y-%m-%dT%H:%M:%SZ"))
            assert 1700 < expires - time.time() <= 1800
            assert set(event) == {
                "roleArn",
                "assumedRoleArn",
                "sessionName",
                "sourceIdentity",
                "expiration",
                "reused",
                "roleFrom",
                "stateName",
            }
        lineage = runtime.executions.lineage(loaded.id)
        assert [t["roleArn"] for t in lineage["tasks"] if t["type"] == "RoleAssumed"] == [
            READER,
            DEPLOYER,
            DEPLOYER,
        ]

        secrets = probe.secrets()
        assert len(secrets) == 6  # two sessions: key id, secret key, session token each
        stored = all_events_text(runtime)
        logged = json.dumps(captured_logs, default=str)
        for secret in secrets:
            assert secret not in stored
            assert secret not in logged
        assumed = [e for e in captured_logs if e["event"] == "aws.role_assumed"]
        assert [e["session_name"] for e in assumed] == [build_session, deploy_session]


# ------------------------------------------------------------------------------ the cache
def test_sessions_are_cached_until_shortly_before_expiry(aws: MotoServer, tmp_path: Path) -> None:
    config = Config.load(aws.write_config(tmp_path / "orchestrator.toml"))
    now = [time.time()]
    cache = RoleSessions(config, refresh_margin=300, clock=lambda: now[0])
    tags = {TAG_EXECUTION: "m:e1"}

    def request(name: str, identity: str = "bob", execution_tags: dict[str, str] = tags) -> SessionRequest:
        return SessionRequest(DEPLOYER, name, identity, execution_tags, 900)

    first, reused = cache.session(request("e1.A.0.x"), state_name="A")
    assert not reused
    again, reused = cache.session(request("e1.B.0.y"), state_name="B")
    assert reused and again is first and again.session_name == "e1.A.0.x"
    assert len(aws.requests("AssumeRole")) == 1

    # another person, or another execution, never shares a session
    carol, reused = cache.session(request("e1.B.0.z", identity="carol"), state_name="B")
    assert not reused and carol.source_identity == "carol"
    other, reused = cache.session(request("e2.B.0.w", execution_tags={TAG_EXECUTION: "m:e2"}), state_name="B")
    assert not reused and other is not first
    assert len(aws.requests("AssumeRole")) == 3

    # shortly before it expires (within the margin) the session is renewed
    now[0] = first.expiration - 301
    _, reused = cache.session(request("e1.C.0.v"), state_name="C")
    assert reused
    now[0] = first.expiration - 299
    renewed, reused = cache.session(request("e1.C.0.u"), state_name="C")
    assert not reused and renewed.session_name == "e1.C.0.u"
    assert [c.params["RoleSessionName"] for c in aws.requests("AssumeRole")][-1] == "e1.C.0.u"
    assert "SecretAccessKey" not in repr(renewed) and renewed.environment[
        "AWS_SECRET_ACCESS_KEY"
    ] not in repr(renewed)


def test_concurrent_tasks_share_one_assume_role_call(aws: MotoServer, tmp_path: Path) -> None:
    config = Config.load(aws.write_config(tmp_path / "orchestrator.toml"))
    cache = RoleSessions(config)
    barrier = threading.Barrier(8)
    results: list[tuple[Any, bool]] = []

    def task(index: int) -> None:
        barrier.wait(timeout=60)
        request = SessionRequest(DEPLOYER, f"e1.Item.0.{index}", "bob", {TAG_EXECUTION: "m:e1"}, 900)
        results.append(cache.session(request, state_name="Item"))

    threads = [threading.Thread(target=task, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(results) == 8
    assert len({id(session) for session, _ in results}) == 1
    assert sorted(reused for _, reused in results) == [False] + [True] * 7
    assert len(aws.requests("AssumeRole")) == 1


# ------------------------------------------------------------------------------ STS says no
DENIED = {
    "StartAt": "Deploy",
    "States": {
        "Deploy": {
            "Type": "Task",
            "Resource": fn("deploy"),
            "Credentials": {"RoleArn": DEPLOYER},
            "ResultPath": "$.deploy",
            "Next": "Locked",
        },
        "Locked": {
            "Type": "Task",
            "Resource": fn("locked"),
            "Credentials": {"RoleArn": LOCKED},
            "Catch": [{"ErrorEquals": ["States.Permissions"], "ResultPath": "$.denied", "Next": "Fallback"}],
            "End": True,
        },
        "Fallback": {"Type": "Pass", "End": True},
    },
}


def enforcing_moto(moto_factory: Callable[..., MotoServer], monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """A moto server that enforces IAM after its first 5 requests (the set-up below): the worker is
    the IAM user ``worker``, whose policy allows sts:AssumeRole on any role; ``deployer`` trusts it,
    ``locked`` trusts only another account. STS's AccessDenied then comes from moto's own evaluation
    of the role's trust policy, as it would from AWS."""
    server = moto_factory(enforce_iam_after=5)
    iam = server.client("iam")
    iam.create_role(
        RoleName="deployer", AssumeRolePolicyDocument=trust(f"arn:aws:iam::{ACCOUNT}:user/worker")
    )
    iam.create_role(RoleName="locked", AssumeRolePolicyDocument=trust("arn:aws:iam::210987654321:root"))
    iam.create_user(UserName="worker")
    iam.put_user_policy(
        UserName="worker",
        PolicyName="assume-roles",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}],
            }
        ),
    )
    key = iam.create_access_key(UserName="worker")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    return server


def test_access_denied_is_states_permissions_and_catchable(
    moto_factory: Callable[..., MotoServer],
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    tmp_path: Path,
) -> None:
    server = enforcing_moto(moto_factory, monkeypatch)
    config = Config.load(server.write_config(tmp_path / "orchestrator.toml"))
    probe = Probe(config)
    for runtime in runtime_for(database_url, config, probe):
        runtime.registry.publish("release", DENIED)
        loaded, _ = runtime.executions.start("release", {}, name="run-1", started_by="bob")
        done = runtime.executions.run_until_settled(loaded.id, timeout=120)
        assert done.status == "SUCCEEDED", done.machine.cause
        output = done.machine.output
        assert output["deploy"]["arn"].startswith(
            f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/run-1.Deploy.0."
        )
        denied = output["denied"]
        assert denied["Error"] == "States.Permissions"
        assert denied["Cause"].startswith(f"cannot assume role {LOCKED} for state 'Locked': STS denied it")
        assert (
            "AccessDenied" in denied["Cause"]
            and "not authorized to perform: sts:AssumeRole" in denied["Cause"]
        )
        assert "Locked" not in probe.environments  # the executor never ran without its role
        assert [e["stateName"] for e in role_events(runtime, loaded.id)] == ["Deploy"]
        assert [c.params["RoleArn"] for c in server.requests("AssumeRole")] == [DEPLOYER, LOCKED]


OTHER_ERROR = {
    "StartAt": "Deploy",
    "States": {
        "Deploy": {
            "Type": "Task",
            "Resource": fn("deploy"),
            "Credentials": {"RoleArn": DEPLOYER},
            "Catch": [{"ErrorEquals": ["Aws.StsError"], "ResultPath": "$.error", "Next": "Fallback"}],
            "End": True,
        },
        "Fallback": {"Type": "Pass", "End": True},
    },
}


def test_other_sts_errors_are_aws_sts_error_and_catchable(
    moto_factory: Callable[..., MotoServer],
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    tmp_path: Path,
) -> None:
    server = enforcing_moto(moto_factory, monkeypatch)
    # the worker signs with keys STS does not know
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAUNKNOWNUNKNOWN00")
    config = Config.load(server.write_config(tmp_path / "orchestrator.toml"))
    probe = Probe(config)
    for runtime in runtime_for(database_url, config, probe):
        runtime.registry.publish("release", OTHER_ERROR)
        loaded, _ = runtime.executions.start("release", {}, name="run-1", started_by="bob")
        done = runtime.executions.run_until_settled(loaded.id, timeout=120)
        assert done.status == "SUCCEEDED", done.machine.cause
        error = done.machine.output["error"]
        assert error["Error"] == "Aws.StsError"
        assert error["Cause"].startswith(
            f"cannot assume role {DEPLOYER} for state 'Deploy': STS answered InvalidClientTokenId: "
        )
        assert probe.environments == {}


def test_no_worker_credentials_is_aws_sts_error(
    aws: MotoServer, monkeypatch: pytest.MonkeyPatch, sqlite_url: str, tmp_path: Path
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    config = Config.load(aws.write_config(tmp_path / "orchestrator.toml"))
    probe = Probe(config)
    for runtime in runtime_for(sqlite_url, config, probe):
        runtime.registry.publish("release", OTHER_ERROR)
        loaded, _ = runtime.executions.start("release", {}, name="run-1", started_by="bob")
        done = runtime.executions.run_until_settled(loaded.id, timeout=120)
        assert done.status == "SUCCEEDED", done.machine.cause
        error = done.machine.output["error"]
        assert error == {
            "Error": "Aws.StsError",
            "Cause": f"cannot assume role {DEPLOYER} for state 'Deploy': "
            "NoCredentialsError: Unable to locate credentials",
        }
        assert aws.requests("AssumeRole") == []


# ------------------------------------------------------------------------------ roles computed at run time
DYNAMIC = {
    "StartAt": "Deploy",
    "States": {
        "Deploy": {
            "Type": "Task",
            "Resource": fn("deploy"),
            "Credentials": {"RoleArn.$": "$.role"},
            "Catch": [{"ErrorEquals": ["States.Permissions"], "ResultPath": "$.error", "Next": "No"}],
            "End": True,
        },
        "No": {"Type": "Pass", "End": True},
    },
}


def test_a_role_computed_at_run_time_is_checked_against_the_allow_list(
    aws: MotoServer, database_url: str, tmp_path: Path
) -> None:
    extra = f'[[aws.allow]]\nstate_machine = "release"\nroles = ["{DEPLOYER}"]\n'
    config = Config.load(aws.write_config(tmp_path / "orchestrator.toml", extra))
    probe = Probe(config)
    for runtime in runtime_for(database_url, config, probe):
        runtime.registry.publish("release", DYNAMIC)  # nothing to refuse before it runs
        ok, _ = runtime.executions.start("release", {"role": DEPLOYER}, name="ok", started_by="bob")
        ok = runtime.executions.run_until_settled(ok.id, timeout=120)
        assert ok.status == "SUCCEEDED" and "error" not in ok.machine.output
        assert ok.machine.output["arn"].startswith(
            f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/ok.Deploy.0."
        )

        no, _ = runtime.executions.start("release", {"role": READER}, name="no", started_by="bob")
        no = runtime.executions.run_until_settled(no.id, timeout=120)
        assert no.machine.output["error"] == {
            "Error": "States.Permissions",
            "Cause": f"state 'Deploy': role {READER} is not allowed for state machine 'release' "
            f"(aws.allow[0] allows: {DEPLOYER})",
        }
        # not a role ARN at all: like any other run-time evaluation error, it fails the execution
        bad, _ = runtime.executions.start("release", {"role": "deployer"}, name="bad", started_by="bob")
        bad = runtime.executions.run_until_settled(bad.id, timeout=120)
        assert (bad.status, bad.machine.error, bad.machine.cause) == (
            "FAILED",
            "States.Runtime",
            "state 'Deploy': Credentials.RoleArn must be an IAM role ARN "
            "(arn:aws:iam::ACCOUNT:role/NAME), got 'deployer'",
        )
        assert [c.params["RoleArn"] for c in aws.requests("AssumeRole")] == [DEPLOYER]
