"""The end-to-end example of ``statemachines/``, run as documented: ``release_pipeline.json`` with
``orchestrator.example.toml``, on SQLite and PostgreSQL.

``Package`` runs the Reflow network ``networks/package.json`` under the release-builder role and
``Deploy`` the Airflow DAG ``dags/release_deploy.py`` under the release-deployer role, both mapped by
the example's ``[[aws.roles]]``. The configuration is the example file with only its endpoints changed:
AWS is a moto server over HTTP (``aws``), Airflow the test run's real Airflow 3 (``shared_airflow``, which
loads the example DAG through ``airflow/dags/example_dags.py``), and the Airflow credentials are the
Secrets Manager secret the example names, read under the deployer's role.

What each side really did is read back from where it happened: moto's request recorder (AssumeRole
parameters, which key signed the child's GetCallerIdentity and the GetSecretValue), Airflow's REST API
(the DAG run's ``conf`` and state) and the event store (RoleAssumed, ExternalRunStarted, lineage).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.config import Config
from orchestrator.executions.tasks import TaskContext, TaskExecutor
from orchestrator.integrations.aws.naming import TAG_EXECUTION, TAG_STATE_MACHINE, TAG_VERSION
from orchestrator.integrations.aws.task_roles import RoleExecutor
from orchestrator.runtime import Runtime, build_runtime
from orchestrator.store import EventStore

from .airflow import conftest as airflow_conftest
from .airflow.conftest import Airflow
from .airflow.server import PASSWORD, USERNAME
from .conftest import MotoServer, RecordedRequest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "statemachines"
EXAMPLE_CONFIG = EXAMPLES / "orchestrator.example.toml"
DEFINITION = EXAMPLES / "release_pipeline.json"
ORCHESTRATOR = Path(sys.executable).parent / "orchestrator"

shared_airflow = airflow_conftest.airflow
"""The test run's Airflow 3 (the fixture of ``airflow/conftest.py``, shared under this name here)."""

ACCOUNT = "123456789012"
BUILDER = f"arn:aws:iam::{ACCOUNT}:role/release-builder"
DEPLOYER = f"arn:aws:iam::{ACCOUNT}:role/release-deployer"
STARTER = "alice@example.com"
CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")
SECRET_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def orchestrator(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(ORCHESTRATOR), *args], capture_output=True, text=True, timeout=120, cwd=cwd, check=False
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


# ------------------------------------------------------------------------ validate, as documented
def test_every_example_definition_validates_with_the_example_config() -> None:
    definitions = sorted(str(p) for p in EXAMPLES.glob("*.json"))
    assert str(DEFINITION) in definitions

    proc = orchestrator("--config", str(EXAMPLE_CONFIG), "validate", *definitions)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == f"valid: {len(definitions)} definitions"
    networks = orchestrator("--config", str(EXAMPLE_CONFIG), "networks", "validate")
    assert networks.returncode == 0, networks.stdout + networks.stderr
    assert "package" in orchestrator("--config", str(EXAMPLE_CONFIG), "networks", "list").stdout


def test_the_example_config_refuses_roles_its_allow_list_does_not_give(tmp_path: Path) -> None:
    definition = json.loads(DEFINITION.read_text(encoding="utf-8"))
    # the pipeline asking for a role outside release-*
    greedy = json.loads(json.dumps(definition))
    greedy["States"]["Deploy"]["Credentials"] = {"RoleArn": f"arn:aws:iam::{ACCOUNT}:role/admin"}
    (tmp_path / "release_pipeline.json").write_text(json.dumps(greedy), encoding="utf-8")
    # another state machine asking for the deployer role: the catch-all entry gives it none
    borrower = {
        "StartAt": "Deploy",
        "States": {"Deploy": {**definition["States"]["Deploy"], "Credentials": {"RoleArn": DEPLOYER}}},
    }
    del borrower["States"]["Deploy"]["Next"]
    borrower["States"]["Deploy"]["End"] = True
    (tmp_path / "hotfix.json").write_text(json.dumps(borrower), encoding="utf-8")

    proc = orchestrator(
        "--config",
        str(EXAMPLE_CONFIG),
        "validate",
        str(tmp_path / "release_pipeline.json"),
        str(tmp_path / "hotfix.json"),
    )

    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines == [
        f"{tmp_path / 'release_pipeline.json'}:/States/Deploy/Credentials/RoleArn: role "
        f"arn:aws:iam::{ACCOUNT}:role/admin is not allowed for state machine 'release_pipeline' "
        f"(aws.allow[0] allows: arn:aws:iam::{ACCOUNT}:role/release-*)",
        f"{tmp_path / 'hotfix.json'}:/States/Deploy/Credentials/RoleArn: role {DEPLOYER} is not allowed "
        "for state machine 'hotfix' (aws.allow[1] allows: none)",
    ]


# ------------------------------------------------------------------------ the run, end to end
def example_config(aws: MotoServer, airflow: Airflow) -> Config:
    """The example configuration with its endpoints pointed at moto and the test Airflow; still read
    from the example's folder, so its relative paths (networks, actors) are the example's."""
    data = tomllib.loads(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    data["aws"]["endpoint_url"] = aws.url
    data["airflow"]["connections"]["main"].update(base_url=airflow.url, poll_max_seconds=1)
    return Config(data, EXAMPLE_CONFIG)


def trust_policy() -> str:
    statement = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def observe_credentials(runtime: Runtime) -> dict[str, dict[str, str]]:
    """State name -> the role session's variables its executor was handed (to look for them in the
    store afterwards). Observes, changes nothing: the real executors still run."""
    seen: dict[str, dict[str, str]] = {}
    for scheme in ("reflow", "airflow"):
        wrapped = runtime.executors[scheme]
        assert isinstance(wrapped, RoleExecutor), wrapped

        def observed(context: TaskContext, inner: TaskExecutor = wrapped.executor) -> Any:
            seen[context.task.state_name] = dict(context.role_environment or {})
            return inner(context)

        wrapped.executor = observed
    return seen


@pytest.fixture
def runtime(
    database_url: str, aws: MotoServer, shared_airflow: Airflow, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Runtime]:
    iam = aws.client("iam")
    for role in (BUILDER, DEPLOYER):
        iam.create_role(RoleName=role.rsplit("/", 1)[1], AssumeRolePolicyDocument=trust_policy())
    aws.client("secretsmanager").create_secret(
        Name="release/airflow", SecretString=json.dumps({"username": USERNAME, "password": PASSWORD})
    )
    monkeypatch.setenv("RELEASE_STS_ENDPOINT_URL", aws.url)  # read by the actor in the Reflow child
    store = EventStore.from_url(database_url, auto_upgrade=True)
    try:
        yield build_runtime(store, example_config(aws, shared_airflow))
    finally:
        store.close()


def signed_by(request: RecordedRequest) -> str:
    """The access key id that signed a recorded request."""
    found = CREDENTIAL.search(request.headers.get("Authorization", ""))
    assert found, request.headers
    return found.group(1)


def tags_of(request: RecordedRequest) -> dict[str, str]:
    params = request.params
    count = sum(1 for key in params if key.startswith("Tags.member.") and key.endswith(".Key"))
    return {params[f"Tags.member.{i}.Key"]: params[f"Tags.member.{i}.Value"] for i in range(1, count + 1)}


def test_the_release_pipeline_runs_reflow_and_airflow_under_two_roles(
    runtime: Runtime, aws: MotoServer, shared_airflow: Airflow
) -> None:
    seen = observe_credentials(runtime)
    definition = json.loads(DEFINITION.read_text(encoding="utf-8"))
    version, _ = runtime.registry.publish("release_pipeline", definition, published_by="release-manager")
    name = f"release-{uuid.uuid4().hex[:8]}"  # Airflow is shared by the whole run: one DAG run per test
    loaded, _ = runtime.executions.start(
        "release_pipeline", {"revision": "D42", "environment": "staging"}, name=name, started_by=STARTER
    )

    done = runtime.executions.run_until_settled(loaded.id, timeout=300)

    assert done.status == "SUCCEEDED", runtime.executions.describe(loaded.id)
    history = runtime.executions.history(loaded.id)
    roles = {e.details["stateName"]: e.details for e in history if e.type == "RoleAssumed"}
    runs = {e.details["system"]: e.details for e in history if e.type == "ExternalRunStarted"}
    assert sorted(roles) == ["Deploy", "Package"] and sorted(runs) == ["airflow", "reflow"]
    package, deploy = roles["Package"], roles["Deploy"]

    # STS was asked for the builder role, then the deployer role, for the starter
    calls = aws.requests("AssumeRole")
    assert [c.params["RoleArn"] for c in calls] == [BUILDER, DEPLOYER]
    for call, state, role, duration in (
        (calls[0], "Package", package, "900"),  # the example gives the builder a shorter session
        (calls[1], "Deploy", deploy, "3600"),
    ):
        assert call.params["RoleSessionName"] == role["sessionName"]
        assert role["sessionName"].startswith(f"{name}.{state}.0.")
        assert call.params["SourceIdentity"] == role["sourceIdentity"] == STARTER
        assert call.params["DurationSeconds"] == duration
        assert tags_of(call) == {
            TAG_EXECUTION: loaded.id,
            TAG_STATE_MACHINE: "release_pipeline",
            TAG_VERSION: str(version.version),
        }
    assert (package["roleArn"], deploy["roleArn"]) == (BUILDER, DEPLOYER)
    assert package["roleFrom"] == "aws.roles[0]" and deploy["roleFrom"] == "aws.roles[1]"
    assert package["sessionName"] != deploy["sessionName"]

    # the Reflow child acted as the builder session: its own GetCallerIdentity, signed with its key
    builder_arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/release-builder/{package['sessionName']}"
    output = done.machine.output
    assert output["builtBy"] == builder_arn == package["assumedRoleArn"]
    [identity_call] = aws.requests("GetCallerIdentity")
    assert signed_by(identity_call) == seen["Package"]["AWS_ACCESS_KEY_ID"]
    assert runs["reflow"]["network"] == "package" and runs["reflow"]["pid"] > 0

    # the Airflow task read its connection's secret as the deployer session
    [secret_call] = aws.requests("GetSecretValue")
    assert signed_by(secret_call) == seen["Deploy"]["AWS_ACCESS_KEY_ID"]
    keys = {seen[state]["AWS_ACCESS_KEY_ID"] for state in ("Package", "Deploy")}
    assert len(keys) == 2 and "testing" not in keys  # two sessions, neither the worker's own key
    deployer = aws.client("sts", access_key_id=signed_by(secret_call)).get_caller_identity()
    assert deployer["Arn"] == deploy["assumedRoleArn"]
    assert (
        deploy["assumedRoleArn"]
        == f"arn:aws:sts::{ACCOUNT}:assumed-role/release-deployer/{deploy['sessionName']}"
    )

    # the DAG run got the Reflow result as its conf; its last task's XCom is the Deploy result
    dag_run = runs["airflow"]
    assert (dag_run["dagId"], dag_run["connection"]) == ("release_deploy", "main")
    assert dag_run["url"] == f"{shared_airflow.url}/dags/release_deploy/runs/{dag_run['runId']}"
    in_airflow = shared_airflow.run("release_deploy", dag_run["runId"])
    assert in_airflow["state"] == "success"
    assert in_airflow["conf"] == {
        "revision": "D42",
        "artifact": "service-D42.tar.gz",
        "builtBy": builder_arn,
        "environment": "staging",
    }
    assert output == {
        "revision": "D42",
        "artifact": "service-D42.tar.gz",
        "builtBy": builder_arn,
        "deployment": {
            "deployed": "service-D42.tar.gz",
            "environment": "staging",
            "revision": "D42",
            "provenance": builder_arn,
            "dagRunId": dag_run["runId"],
        },
    }

    # lineage: version -> starter -> (role session -> run) per task
    lineage = runtime.executions.lineage(loaded.id)
    assert lineage["version"]["number"] == version.version
    assert lineage["version"]["publishedBy"] == "release-manager"
    assert lineage["trigger"]["startedBy"] == STARTER
    chain = [
        (t["type"], t.get("roleArn") or t.get("system"), t.get("sessionName") or t.get("runId"))
        for t in lineage["tasks"]
        if t["type"] in ("RoleAssumed", "ExternalRunStarted")
    ]
    assert chain == [
        ("RoleAssumed", BUILDER, package["sessionName"]),
        ("ExternalRunStarted", "reflow", runs["reflow"]["runId"]),
        ("RoleAssumed", DEPLOYER, deploy["sessionName"]),
        ("ExternalRunStarted", "airflow", dag_run["runId"]),
    ]

    # no key of either session anywhere in the store
    secrets = {seen[state][key] for state in ("Package", "Deploy") for key in SECRET_KEYS}
    assert len(secrets) == 6
    stored = json.dumps(
        [[r.stream_id, r.type, r.data, r.metadata] for r in runtime.store.read_all(0, 100_000)], default=str
    )
    assert loaded.id in stored and package["sessionName"] in stored  # it is the whole store
    for secret in secrets:
        assert secret not in stored
