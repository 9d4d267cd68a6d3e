"""Watching a DAG run through Airflow 3's wait stream (NDJSON), against the real Airflow 3: the result
comes with the stream's last line, the task heartbeats between lines, a stop interrupts the stream, and
an Airflow without the stream (older than 3.1: 404) is polled instead, remembered per connection."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from orchestrator.config import Config
from orchestrator.executions.tasks import TaskCancelled
from orchestrator.integrations.airflow import settings as airflow_settings
from orchestrator.integrations.airflow.connect import Connector
from orchestrator.integrations.airflow.executor import AirflowExecutor, run_id_for

from .conftest import Airflow, ContextFactory


@dataclass
class Recording(httpx.BaseTransport):
    """The network, recording each request's method and path; with ``no_wait`` the wait endpoint
    answers 404 as it does on an Airflow older than 3.1 (a route that does not exist)."""

    no_wait: bool = False
    calls: list[tuple[str, str]] = field(default_factory=list)
    network: httpx.HTTPTransport = field(default_factory=httpx.HTTPTransport)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.calls.append((request.method, request.url.path))
        if self.no_wait and request.url.path.endswith("/wait"):
            return httpx.Response(404, json={"detail": "Not Found"})
        return self.network.handle_request(request)

    def paths(self, method: str, suffix: str) -> list[str]:
        with self.lock:
            return [path for m, path in self.calls if m == method and path.endswith(suffix)]


def executor_with(config: Config, recording: Recording) -> tuple[AirflowExecutor, Connector]:
    connector = Connector(config, recording)
    return AirflowExecutor(airflow_settings.load(config), connector), connector


def test_the_result_comes_with_the_streams_last_line(
    airflow: Airflow, airflow_config: Config, context_for: ContextFactory
) -> None:
    recording = Recording()
    executor, _ = executor_with(airflow_config, recording)
    context, _ = context_for("airflow:orch_sum", {"numbers": [1, 2, 3]})

    assert executor(context) == {"label": "", "sum": 6}

    run_id = run_id_for(context.execution, context.task.id)
    assert recording.paths("GET", f"/dagRuns/{run_id}/wait") == [
        f"/api/v2/dags/orch_sum/dagRuns/{run_id}/wait"
    ]
    assert recording.paths("GET", f"/dagRuns/{run_id}") == []  # never polled
    assert recording.paths("GET", "/return_value") == []  # no XCom call: the stream carried it

    # ResultTask asks the stream for that task's result
    context, _ = context_for("airflow:orch_sum", {"numbers": [7], "ResultTask": "prepare"})
    assert executor(context) == {"numbers": [7], "label": ""}


def test_an_airflow_without_the_stream_is_polled_and_remembered(
    airflow: Airflow, airflow_config: Config, context_for: ContextFactory
) -> None:
    recording = Recording(no_wait=True)
    executor, connector = executor_with(airflow_config, recording)
    first, _ = context_for("airflow:orch_sum", {"numbers": [4]})

    assert executor(first) == {"label": "", "sum": 4}

    run_id = run_id_for(first.execution, first.task.id)
    assert len(recording.paths("GET", f"/dagRuns/{run_id}/wait")) == 1
    assert recording.paths("GET", f"/dagRuns/{run_id}")  # polled
    assert recording.paths("GET", "/return_value")
    assert not connector.streams("local")

    second, _ = context_for("airflow:orch_sum", {"numbers": [5]})
    assert executor(second) == {"label": "", "sum": 5}
    assert recording.paths("GET", "/wait") == [f"/api/v2/dags/orch_sum/dagRuns/{run_id}/wait"]  # not again


def test_the_task_heartbeats_between_lines_and_a_stop_interrupts_the_stream(
    airflow: Airflow, airflow_config: Config, context_for: ContextFactory
) -> None:
    recording = Recording()
    executor, _ = executor_with(airflow_config, recording)
    context, recorder = context_for("airflow:orch_slow", {"seconds": 600}, heartbeat=3)  # beats every 1 s
    run_id = run_id_for(context.execution, context.task.id)
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = executor(context)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    airflow.wait_for("orch_slow", run_id, {"running"})
    deadline = time.monotonic() + 60
    while recorder.heartbeats < 3:
        assert time.monotonic() < deadline, "no heartbeats while the stream was read"
        time.sleep(0.2)
    assert len(recording.paths("GET", "/wait")) == 1  # one stream all along

    recorder.task_over.set()  # the execution was stopped
    context.cancelled.set()
    thread.join(60)
    assert not thread.is_alive()
    assert isinstance(outcome.get("error"), TaskCancelled)
    assert airflow.run("orch_slow", run_id)["state"] == "failed"


def test_a_run_that_finished_before_the_stream_opens_answers_at_once(
    airflow: Airflow, airflow_config: Config, context_for: ContextFactory
) -> None:
    # the same attempt again after the run finished (a worker crashed after triggering): resumes at once
    recording = Recording()
    executor, _ = executor_with(airflow_config, recording)
    context, _ = context_for("airflow:orch_slow", {"seconds": 0})
    assert executor(context) == "woke up"
    again, _ = context_for("airflow:orch_slow", {"seconds": 0}, execution=context.execution)
    assert executor(again) == "woke up"
    run_id = run_id_for(context.execution, context.task.id)
    assert len(recording.paths("GET", f"/dagRuns/{run_id}/wait")) == 2
    assert len([run for run in airflow.runs("orch_slow") if run["dag_run_id"] == run_id]) == 1
