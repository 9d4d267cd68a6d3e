"""The v1 dialect (Airflow 2) against recorded v1 answers replayed by an ``httpx.MockTransport``.

No Airflow 2 runs here, so the protocol shape is checked against answers recorded in
``recorded_v1/``; the replay also holds the executor to v1's rules the real server enforces: HTTP
Basic auth, no ``update_mask`` on the run's state PATCH, no v2-only keys in the trigger body, and XCom
values as Python reprs unless ``stringify=false``.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrator.config import Config
from orchestrator.executions.tasks import TaskError
from orchestrator.integrations.airflow import settings as airflow_settings
from orchestrator.integrations.airflow.api import exception_from_log
from orchestrator.integrations.airflow.connect import Connector
from orchestrator.integrations.airflow.executor import AirflowExecutor, run_id_for

from .conftest import ContextFactory

RECORDED = Path(__file__).resolve().parent / "recorded_v1"
BASE = "http://airflow2.test:8080"


class V1Replay:
    """Answers each request with the next recorded answer for ``METHOD path``."""

    def __init__(self, scenario: str) -> None:
        self.exchanges: dict[str, list[dict[str, Any]]] = json.loads(
            (RECORDED / f"{scenario}.json").read_text()
        )["exchanges"]
        self.run_id = "?"
        self.calls: list[tuple[str, str, dict[str, str], Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        path = request.url.path
        self.calls.append((request.method, path, dict(request.url.params), body))
        if path.startswith("/api/v1/") and not path.endswith("/version"):
            expected = "Basic " + base64.b64encode(b"admin:admin").decode()
            if request.headers.get("Authorization") != expected:
                return httpx.Response(401, json={"detail": None, "status": 401, "title": "Unauthorized"})
        if request.method == "POST" and path.endswith("/dagRuns"):
            if set(body) - {"conf", "dag_run_id", "note"}:
                return httpx.Response(
                    400, json={"detail": f"unknown fields {sorted(set(body))}", "status": 400}
                )
            self.run_id = body["dag_run_id"]
        if request.method == "PATCH" and "/dagRuns/" in path and "update_mask" in request.url.params:
            return httpx.Response(400, json={"detail": "Unknown field(s): update_mask", "status": 400})
        key = f"{request.method} {path.replace(self.run_id, '{run_id}')}"
        answers = self.exchanges.get(key)
        if answers is None:
            return httpx.Response(404, json={"detail": f"not recorded: {key}", "status": 404})
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        content = json.loads(json.dumps(answer["body"]).replace("{run_id}", self.run_id))
        if key.endswith("/xcomEntries/return_value") and request.url.params.get("stringify") != "false":
            content["value"] = repr(content["value"])  # what v1 does without stringify=false
        return httpx.Response(answer["status"], json=content)


def executor_for(replay: V1Replay, monkeypatch: pytest.MonkeyPatch, **connection: Any) -> AirflowExecutor:
    monkeypatch.setenv("AF2_USER", "admin")
    monkeypatch.setenv("AF2_PASSWORD", "admin")
    table = {
        "base_url": BASE,
        "username_env": "AF2_USER",
        "password_env": "AF2_PASSWORD",
        "poll_max_seconds": 0.2,
    }
    config = Config({"airflow": {"connections": {"af2": {**table, **connection}}}})
    return AirflowExecutor(airflow_settings.load(config), Connector(config, httpx.MockTransport(replay)))


def test_v1_success_detects_the_version_and_reads_the_xcom_natively(
    monkeypatch: pytest.MonkeyPatch, context_for: ContextFactory
) -> None:
    replay = V1Replay("success")
    context, recorder = context_for("airflow:af2/etl", {"rows": 3})

    result = executor_for(replay, monkeypatch)(context)

    assert result == {"loaded": 3, "table": "events"}
    run_id = run_id_for(context.execution, context.task.id)
    trigger = [call for call in replay.calls if call[0] == "POST" and call[1].endswith("/dagRuns")]
    assert trigger == [("POST", "/api/v1/dags/etl/dagRuns", {}, {"dag_run_id": run_id, "conf": {"rows": 3}})]
    assert ("PATCH", "/api/v1/dags/etl", {"update_mask": "is_paused"}, {"is_paused": False}) in replay.calls
    assert recorder.started()["url"] == f"{BASE}/dags/etl/grid?dag_run_id={run_id}"
    assert [call[1] for call in replay.calls[:2]] == ["/api/v2/version", "/api/v1/version"]


def test_v1_failure_reads_the_exception_from_the_text_log(
    monkeypatch: pytest.MonkeyPatch, context_for: ContextFactory
) -> None:
    with pytest.raises(TaskError) as raised:
        executor_for(V1Replay("failure"), monkeypatch)(context_for("airflow:af2/etl", {})[0])
    assert raised.value.error == "Airflow.DagRunFailed"
    cause = json.loads(raised.value.cause)
    assert (cause["failedTasks"], cause["upstreamFailedTasks"]) == (["extract"], ["load"])
    assert cause["exception"] == "KeyError: 'rows'"


def test_v1_timeout_cancels_without_update_mask(
    monkeypatch: pytest.MonkeyPatch, context_for: ContextFactory
) -> None:
    replay = V1Replay("timeout")
    context, _ = context_for("airflow:af2/etl", {}, timeout=1)
    with pytest.raises(TaskError) as raised:
        executor_for(replay, monkeypatch, api_version="v1")(context)
    assert raised.value.error == "States.Timeout"
    run_id = run_id_for(context.execution, context.task.id)
    assert ("PATCH", f"/api/v1/dags/etl/dagRuns/{run_id}", {}, {"state": "failed"}) in replay.calls
    assert not any(call[1].endswith("/version") for call in replay.calls)  # pinned: no detection


def test_v1_unknown_dag_and_wrong_password(
    monkeypatch: pytest.MonkeyPatch, context_for: ContextFactory
) -> None:
    with pytest.raises(TaskError) as raised:
        executor_for(V1Replay("success"), monkeypatch)(context_for("airflow:af2/missing", {})[0])
    assert raised.value.error == "Airflow.DagNotFound"
    executor = executor_for(V1Replay("success"), monkeypatch)
    monkeypatch.setenv("AF2_PASSWORD", "nope")
    with pytest.raises(TaskError) as raised:
        executor(context_for("airflow:af2/etl", {})[0])
    assert raised.value.error == "Airflow.ConnectionFailed"
    assert "HTTP 401" in raised.value.cause


def test_exceptions_are_found_in_both_log_shapes() -> None:
    structured = [
        {"event": "::group::Log message source details"},
        {
            "event": "Task failed with exception",
            "level": "error",
            "error_detail": [{"exc_type": "RuntimeError", "exc_value": "disk full", "frames": []}],
        },
    ]
    assert exception_from_log(structured) == "RuntimeError: disk full"
    assert exception_from_log(
        "[2024-05-01] {x.py:1} INFO - fine\nairflow.exceptions.AirflowException: boom\n"
    ) == ("AirflowException: boom")
    assert exception_from_log("all good\n") is None
