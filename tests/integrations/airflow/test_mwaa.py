"""Amazon MWAA connections: boto3 ``invoke_rest_api`` under the task's role and, for the paths it
refuses (over 64 characters), a web session from ``create_web_login_token``; through a bridge that
speaks MWAA's wire protocol and web login and forwards to the real Airflow 3 (``mwaa_bridge``), as an
Airflow 3 environment (REST v2) and as an Airflow 2 one (REST v1, translated by the bridge)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orchestrator.config import Config
from orchestrator.executions.tasks import TaskError
from orchestrator.integrations.airflow import settings as airflow_settings
from orchestrator.integrations.airflow.connect import Connector
from orchestrator.integrations.airflow.executor import AirflowExecutor, run_id_for
from orchestrator.integrations.airflow.transport import MwaaTransport

from .conftest import Airflow, ContextFactory
from .mwaa_bridge import MwaaBridge
from .server import PASSWORD, USERNAME

ROLE = {
    "AWS_ACCESS_KEY_ID": "ASIAROLESESSION0001",
    "AWS_SECRET_ACCESS_KEY": "role-secret",
    "AWS_SESSION_TOKEN": "role-token",
    "AWS_DEFAULT_REGION": "us-east-1",
}
NO_WEB_LOGIN = {**ROLE, "AWS_ACCESS_KEY_ID": "NOWEB"}  # may not call CreateWebLoginToken

MakeExecutor = Callable[[MwaaBridge], AirflowExecutor]


@pytest.fixture(scope="module")
def bridge(airflow: Airflow) -> Iterator[MwaaBridge]:
    """An Airflow 3 environment (REST v2)."""
    server = MwaaBridge(airflow.url, USERNAME, PASSWORD).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def bridge_v1(airflow: Airflow) -> Iterator[MwaaBridge]:
    """An Airflow 2 environment (REST v1), in front of the same Airflow."""
    server = MwaaBridge(airflow.url, USERNAME, PASSWORD, name="test-env-2", airflow_version="2.10.3").start()
    yield server
    server.stop()


def _config(bridge: MwaaBridge) -> Config:
    connection = {"mwaa_environment": bridge.name, "poll_max_seconds": 1}
    return Config(
        {
            "aws": {"endpoint_url": bridge.url, "region": "us-east-1"},
            "airflow": {"connections": {"mwaa": connection}},
        }
    )


@pytest.fixture
def executor_on(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> MakeExecutor:
    """``executor_on(bridge)``: an executor whose connection ``mwaa`` is the bridge's environment."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWORKERPROCESS")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "worker-secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    # MWAA's host prefixes ("env.", "api.") cannot resolve on a loopback endpoint
    monkeypatch.setenv("AWS_DISABLE_HOST_PREFIX_INJECTION", "true")

    def make(bridge: MwaaBridge) -> AirflowExecutor:
        bridge.reset()
        config = _config(bridge)
        return AirflowExecutor(airflow_settings.load(config), Connector(config, mwaa_web_scheme="http"))

    return make


def test_mwaa_run_under_the_task_role_returns_the_xcom_result(
    executor_on: MakeExecutor, bridge: MwaaBridge, airflow: Airflow, context_for: ContextFactory
) -> None:
    context, recorder = context_for("airflow:mwaa/orch_sum", {"numbers": [5, 6]}, role_environment=ROLE)

    assert executor_on(bridge)(context) == {"label": "", "sum": 11}

    run_id = run_id_for(context.execution, context.task.id)
    assert airflow.run("orch_sum", run_id)["conf"] == {"numbers": [5, 6]}
    assert bridge.access_keys == {"ASIAROLESESSION0001"}  # the role's session, not the worker's keys
    assert bridge.paths and max(len(path) for path in bridge.paths) <= 64
    assert (bridge.logins, bridge.web_paths) == (0, [])  # the result came within invoke_rest_api's limit
    port = airflow.url.rsplit(":", 1)[1]
    assert recorder.started()["url"] == f"https://127.0.0.1:{port}/dags/orch_sum/runs/{run_id}"


def test_mwaa_failure_reads_the_exception_through_a_web_session(
    executor_on: MakeExecutor, bridge: MwaaBridge, context_for: ContextFactory
) -> None:
    context, _ = context_for("airflow:mwaa/orch_fail", {"value": 1}, role_environment=ROLE)
    with pytest.raises(TaskError) as raised:
        executor_on(bridge)(context)

    assert raised.value.error == "Airflow.DagRunFailed"
    cause = json.loads(raised.value.cause)
    assert (cause["failedTasks"], cause["upstreamFailedTasks"]) == (["explode"], ["after"])
    assert cause["exception"] == "ValueError: bad input: 1"
    assert max(len(path) for path in bridge.paths) <= 64
    run_id = run_id_for(context.execution, context.task.id)
    log_path = f"/dags/orch_fail/dagRuns/{run_id}/taskInstances/explode/logs/1"
    assert len(log_path) > 64
    assert bridge.web_paths == [log_path]  # only the long path took the web session
    assert bridge.logins == 1


def test_mwaa_without_web_login_permission_still_fails_clearly(
    executor_on: MakeExecutor, bridge: MwaaBridge, bridge_v1: MwaaBridge, context_for: ContextFactory
) -> None:
    # the failure is reported without the exception (the task log needs the web session)
    with pytest.raises(TaskError) as raised:
        executor_on(bridge)(
            context_for("airflow:mwaa/orch_fail", {"value": 2}, role_environment=NO_WEB_LOGIN)[0]
        )
    assert raised.value.error == "Airflow.DagRunFailed"
    cause = json.loads(raised.value.cause)
    assert (cause["failedTasks"], cause["exception"]) == (["explode"], None)

    # on Airflow 2 the result itself is on a long path: a permissions error naming the operation
    with pytest.raises(TaskError) as raised:
        executor_on(bridge_v1)(
            context_for("airflow:mwaa/orch_sum", {"numbers": [1]}, role_environment=NO_WEB_LOGIN)[0]
        )
    assert raised.value.error == "States.Permissions"
    assert "CreateWebLoginToken" in raised.value.cause


def test_mwaa_airflow2_reads_long_v1_paths_through_a_web_session(
    executor_on: MakeExecutor, bridge_v1: MwaaBridge, airflow: Airflow, context_for: ContextFactory
) -> None:
    executor = executor_on(bridge_v1)
    context, recorder = context_for("airflow:mwaa/orch_sum", {"numbers": [2, 40]}, role_environment=ROLE)

    assert executor(context) == {"label": "", "sum": 42}  # the XCom, natively (stringify=false)

    run_id = run_id_for(context.execution, context.task.id)
    assert airflow.run("orch_sum", run_id)["conf"] == {"numbers": [2, 40]}
    xcom = f"/dags/orch_sum/dagRuns/{run_id}/taskInstances/total/xcomEntries/return_value"
    assert bridge_v1.web_paths == [xcom] and bridge_v1.logins == 1
    assert bridge_v1.paths and max(len(path) for path in bridge_v1.paths) <= 64
    assert recorder.started()["url"].endswith(f"/dags/orch_sum/grid?dag_run_id={run_id}")  # Airflow 2's UI

    failing, _ = context_for("airflow:mwaa/orch_fail", {"value": 3}, role_environment=ROLE)
    with pytest.raises(TaskError) as raised:
        executor(failing)
    cause = json.loads(raised.value.cause)
    assert (raised.value.error, cause["exception"]) == ("Airflow.DagRunFailed", "ValueError: bad input: 3")


def test_an_expired_web_session_is_opened_again_once(
    bridge_v1: MwaaBridge, executor_on: MakeExecutor
) -> None:
    executor_on(bridge_v1)  # the worker's environment, as for the other tests
    config = _config(bridge_v1)
    connection = airflow_settings.load(config).connections["mwaa"]
    api, _ = Connector(config, mwaa_web_scheme="http").open(connection, ROLE)
    transport = api.transport
    assert isinstance(transport, MwaaTransport) and transport.web is not None
    try:
        assert transport.request("GET", "/dags/orch_sum").ok and bridge_v1.logins == 0  # invoke_rest_api
        assert transport.web.request("GET", "/dags/orch_sum/tasks").ok and bridge_v1.logins == 1
        assert transport.web.request("GET", "/dags/orch_sum/tasks").ok and bridge_v1.logins == 1  # kept
        bridge_v1.expire_sessions()
        assert transport.web.request("GET", "/dags/orch_sum/tasks").ok and bridge_v1.logins == 2
    finally:
        transport.close()


def test_mwaa_access_denied_is_a_permissions_error(
    executor_on: MakeExecutor, bridge: MwaaBridge, context_for: ContextFactory
) -> None:
    denied = {**ROLE, "AWS_ACCESS_KEY_ID": "DENIED"}
    with pytest.raises(TaskError) as raised:
        executor_on(bridge)(context_for("airflow:mwaa/orch_sum", {}, role_environment=denied)[0])
    assert raised.value.error == "States.Permissions"
    assert "AccessDeniedException" in raised.value.cause
