"""Amazon MWAA connections: boto3 ``invoke_rest_api`` under the task's role, through a bridge that
speaks MWAA's wire protocol and forwards to the real Airflow 3 (``mwaa_bridge``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.config import Config
from orchestrator.executions.tasks import TaskError
from orchestrator.integrations.airflow import settings as airflow_settings
from orchestrator.integrations.airflow.connect import Connector
from orchestrator.integrations.airflow.executor import AirflowExecutor, run_id_for

from .conftest import Airflow, ContextFactory
from .mwaa_bridge import MwaaBridge

ROLE = {
    "AWS_ACCESS_KEY_ID": "ASIAROLESESSION0001",
    "AWS_SECRET_ACCESS_KEY": "role-secret",
    "AWS_SESSION_TOKEN": "role-token",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="module")
def bridge(airflow: Airflow) -> Iterator[MwaaBridge]:
    airflow.runs("orch_sum")  # fetches our JWT
    server = MwaaBridge(airflow.url, airflow._token).start()
    yield server
    server.stop()


@pytest.fixture
def executor(bridge: MwaaBridge, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AirflowExecutor:
    bridge.paths.clear()
    bridge.access_keys.clear()
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWORKERPROCESS")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "worker-secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    # MWAA's InvokeRestApi host prefix ("env.") cannot resolve on a loopback endpoint
    monkeypatch.setenv("AWS_DISABLE_HOST_PREFIX_INJECTION", "true")
    config = Config(
        {
            "aws": {"endpoint_url": bridge.url, "region": "us-east-1"},
            "airflow": {"connections": {"mwaa": {"mwaa_environment": "test-env", "poll_max_seconds": 1}}},
        }
    )
    return AirflowExecutor(airflow_settings.load(config), Connector(config))


def test_mwaa_run_under_the_task_role_returns_the_xcom_result(
    executor: AirflowExecutor, bridge: MwaaBridge, airflow: Airflow, context_for: ContextFactory
) -> None:
    context, recorder = context_for("airflow:mwaa/orch_sum", {"numbers": [5, 6]}, role_environment=ROLE)

    assert executor(context) == {"label": "", "sum": 11}

    run_id = run_id_for(context.execution, context.task.id)
    assert airflow.run("orch_sum", run_id)["conf"] == {"numbers": [5, 6]}
    assert bridge.access_keys == {"ASIAROLESESSION0001"}  # the role's session, not the worker's keys
    assert bridge.paths and max(len(path) for path in bridge.paths) <= 64
    port = airflow.url.rsplit(":", 1)[1]
    assert recorder.started()["url"] == f"https://127.0.0.1:{port}/dags/orch_sum/runs/{run_id}"


def test_mwaa_failure_names_the_failed_tasks(
    executor: AirflowExecutor, context_for: ContextFactory, bridge: MwaaBridge
) -> None:
    with pytest.raises(TaskError) as raised:
        executor(context_for("airflow:mwaa/orch_fail", {"value": 1}, role_environment=ROLE)[0])
    assert raised.value.error == "Airflow.DagRunFailed"
    cause = json.loads(raised.value.cause)
    assert (cause["failedTasks"], cause["upstreamFailedTasks"]) == (["explode"], ["after"])
    assert max(len(path) for path in bridge.paths) <= 64  # the task log's path is too long: not asked


def test_mwaa_refuses_a_dag_id_too_long_for_its_paths_before_triggering(
    executor: AirflowExecutor, bridge: MwaaBridge, context_for: ContextFactory
) -> None:
    with pytest.raises(TaskError) as raised:
        executor(context_for(f"airflow:mwaa/{'d' * 40}", {}, role_environment=ROLE)[0])
    assert raised.value.error == "Airflow.PathTooLong"
    assert "use a DAG id of at most 23 characters" in raised.value.cause
    assert bridge.paths == []


def test_mwaa_access_denied_is_a_permissions_error(
    executor: AirflowExecutor, context_for: ContextFactory
) -> None:
    denied = {**ROLE, "AWS_ACCESS_KEY_ID": "DENIED"}
    with pytest.raises(TaskError) as raised:
        executor(context_for("airflow:mwaa/orch_sum", {}, role_environment=denied)[0])
    assert raised.value.error == "States.Permissions"
    assert "AccessDeniedException" in raised.value.cause
