"""The ``[airflow]`` configuration, the resource checks at publish, the run ids, and credentials read
from AWS Secrets Manager (moto in server mode) against the real Airflow."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orchestrator.config import Config, ConfigError
from orchestrator.integrations import airflow as integration
from orchestrator.integrations.airflow import settings as airflow_settings
from orchestrator.integrations.airflow.connect import Connector
from orchestrator.integrations.airflow.executor import AirflowExecutor, run_id_for
from orchestrator.runtime import build_runtime
from orchestrator.store import EventStore

from ..conftest import MotoServer
from .conftest import Airflow, ContextFactory


def problem(table: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as raised:
        airflow_settings.load(Config({"airflow": table}))
    return str(raised.value)


def test_bad_connections_are_refused_naming_the_key() -> None:
    ok = {"base_url": "http://a:8080"}
    assert problem({"connections": {"x": {**ok, "password": "hunter2"}}}) == (
        "configuration: airflow.connections.x.password: unknown key (secrets never go in the configuration: "
        "name an environment variable with username_env/password_env/token_env, "
        "or an AWS secret with secret_id)"
    )
    assert "needs exactly one of base_url" in problem({"connections": {"x": {}}})
    assert "needs exactly one of base_url" in problem({"connections": {"x": {**ok, "mwaa_environment": "e"}}})
    assert 'api_version: must be "auto", "v1" or "v2"' in problem(
        {"connections": {"x": {**ok, "api_version": "3"}}}
    )
    assert "base_url: must be an http(s) URL" in problem({"connections": {"x": {"base_url": "airflow:8080"}}})
    assert "username_env and password_env go together" in problem(
        {"connections": {"x": {**ok, "username_env": "U"}}}
    )
    assert "one source of credentials" in problem(
        {"connections": {"x": {**ok, "token_env": "T", "secret_id": "s"}}}
    )
    assert "poll_max_seconds: must be a positive number" in problem(
        {"connections": {"x": {**ok, "poll_max_seconds": 0}}}
    )
    assert problem({"default_connection": "nope", "connections": {"x": ok}}) == (
        "configuration: airflow.default_connection: names no configured connection (configured: x)"
    )


def test_a_single_connection_is_the_default() -> None:
    settings = airflow_settings.load(
        Config({"airflow": {"connections": {"only": {"mwaa_environment": "e"}}}})
    )
    assert settings.default_connection == "only"
    assert airflow_settings.load(Config()).connections == {}


def test_definition_checks_name_the_configured_connections() -> None:
    config = Config(
        {"airflow": {"connections": {"a": {"base_url": "http://a"}, "b": {"base_url": "http://b"}}}}
    )
    (check,) = integration.definition_checks(config)
    definition = {
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Parallel",
                "Branches": [
                    {
                        "StartAt": "T",
                        "States": {"T": {"Type": "Task", "Resource": "airflow:c/dag", "End": True}},
                    }
                ],
                "Next": "M",
            },
            "M": {
                "Type": "Map",
                "ItemProcessor": {
                    "StartAt": "U",
                    "States": {"U": {"Type": "Task", "Resource": "airflow:dag", "End": True}},
                },
                "Next": "Ok",
            },
            "Ok": {"Type": "Task", "Resource": "airflow:b/dag", "End": True},
        },
    }
    assert check("m", definition) == [
        "/States/P/Branches/0/States/T/Resource: unknown Airflow connection 'c' (configured: a, b)",
        "/States/M/ItemProcessor/States/U/Resource: no default Airflow connection: name one "
        "(airflow:<connection>/dag) or set [airflow] default_connection (configured connections: a, b)",
    ]


def test_install_registers_the_scheme_without_network(tmp_path: Any) -> None:
    store = EventStore.from_url(f"sqlite:///{tmp_path / 'o.db'}", auto_upgrade=True)
    try:
        config = Config({"airflow": {"connections": {"a": {"base_url": "http://unreachable.invalid"}}}})
        runtime = build_runtime(store, config)
        executor = runtime.executors["airflow"]
        # the aws integration may wrap it to assume the task's role first
        assert isinstance(getattr(executor, "executor", executor), AirflowExecutor)
    finally:
        store.close()


def test_run_ids_are_deterministic_short_and_distinct() -> None:
    first = run_id_for("m:exec-1", "#Deploy#4#0")
    assert first == run_id_for("m:exec-1", "#Deploy#4#0")
    assert len(first) == 21 and first.startswith("orch-")
    others = {
        run_id_for("m:exec-1", "#Deploy#4#1"),
        run_id_for("m:exec-2", "#Deploy#4#0"),
        run_id_for("m:exec-1", "Map/3#Deploy#4#0"),
    }
    assert first not in others and len(others) == 3


def test_credentials_from_secrets_manager_under_the_task_role(
    aws: MotoServer, airflow: Airflow, context_for: ContextFactory
) -> None:
    aws.client("secretsmanager").create_secret(
        Name="prod/airflow", SecretString=json.dumps({"username": "admin", "password": "admin"})
    )
    config = Config(
        {
            "aws": {"endpoint_url": aws.url, "region": "us-east-1"},
            "airflow": {"connections": {"s": {"base_url": airflow.url, "secret_id": "prod/airflow"}}},
        }
    )
    executor = AirflowExecutor(airflow_settings.load(config), Connector(config))
    role = {"AWS_ACCESS_KEY_ID": "ASIAROLESECRETS01", "AWS_SECRET_ACCESS_KEY": "x", "AWS_SESSION_TOKEN": "t"}
    context, _ = context_for("airflow:s/orch_sum", {"numbers": [7]}, role_environment=role)

    assert executor(context) == {"label": "", "sum": 7}
    reads = aws.requests("GetSecretValue")
    assert len(reads) == 1
    assert "ASIAROLESECRETS01" in reads[0].headers.get("Authorization", "")

    missing = Config(
        {**config.data, "airflow": {"connections": {"s": {"base_url": airflow.url, "secret_id": "nope"}}}}
    )
    from orchestrator.executions.tasks import TaskError

    with pytest.raises(TaskError) as raised:
        AirflowExecutor(airflow_settings.load(missing), Connector(missing))(
            context_for("airflow:s/orch_sum", {})[0]
        )
    assert (raised.value.error, raised.value.cause) == (
        "Airflow.ConnectionFailed",
        "Airflow connection 's': secret 'nope' does not exist",
    )
