"""The ``airflow:`` executor against a real Airflow 3 (REST API v2): result, failure, timeout, cancel,
crash safety, and the errors a wrong resource or wrong credentials give."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import pytest

from orchestrator.config import Config
from orchestrator.executions.tasks import TaskCancelled, TaskError
from orchestrator.integrations.airflow import settings as airflow_settings
from orchestrator.integrations.airflow.connect import Connector
from orchestrator.integrations.airflow.executor import AirflowExecutor, run_id_for

from .conftest import Airflow, ContextFactory, Recorder, local_connection


def executor_for(config: Config) -> AirflowExecutor:
    return AirflowExecutor(airflow_settings.load(config), Connector(config))


def label() -> str:
    return uuid.uuid4().hex[:8]


def test_success_returns_the_last_tasks_xcom_and_records_the_run(
    airflow: Airflow, airflow_config: Config, context_for: ContextFactory
) -> None:
    tag = label()
    context, recorder = context_for("airflow:orch_sum", {"numbers": [1, 2, 3.5], "label": tag})

    result = executor_for(airflow_config)(context)

    assert result == {"label": tag, "sum": 6.5}
    started = recorder.started()
    run_id = run_id_for(context.execution, context.task.id)
    assert started == {
        "system": "airflow",
        "connection": "local",
        "dagId": "orch_sum",
        "runId": run_id,
        "url": f"{airflow.url}/dags/orch_sum/runs/{run_id}",
    }
    run = airflow.run("orch_sum", run_id)
    assert run["state"] == "success"
    assert run["conf"] == {"numbers": [1, 2, 3.5], "label": tag}
    assert context.execution in str(run["note"])


def test_result_task_picks_another_tasks_xcom_and_is_not_sent_as_conf(
    airflow: Airflow, airflow_config: Config, context_for: ContextFactory
) -> None:
    context, _ = context_for("airflow:local/orch_sum", {"numbers": [4], "ResultTask": "prepare"})

    result = executor_for(airflow_config)(context)

    assert result == {"numbers": [4], "label": ""}
    assert airflow.run("orch_sum", run_id_for(context.execution, context.task.id))["conf"] == {"numbers": [4]}


def test_failure_names_the_failed_task_and_its_exception(
    airflow: Airflow, airflow_config: Config, context_for: ContextFactory
) -> None:
    context, recorder = context_for("airflow:orch_fail", {"value": 42})

    with pytest.raises(TaskError) as raised:
        executor_for(airflow_config)(context)

    assert raised.value.error == "Airflow.DagRunFailed"
    cause = json.loads(raised.value.cause)
    assert cause["failedTasks"] == ["explode"]
    assert cause["upstreamFailedTasks"] == ["after"]
    assert cause["exception"] == "ValueError: bad input: 42"
    assert cause["exceptions"] == {"explode": "ValueError: bad input: 42"}
    assert cause["runId"] == recorder.started()["runId"]
    assert cause["url"].startswith(f"{airflow.url}/dags/orch_fail/runs/")


def test_timeout_cancels_the_run_in_airflow(
    airflow: Airflow, airflow_config: Config, context_for: ContextFactory
) -> None:
    context, _ = context_for("airflow:orch_slow", {"seconds": 600}, timeout=4)
    run_id = run_id_for(context.execution, context.task.id)

    with pytest.raises(TaskError) as raised:
        executor_for(airflow_config)(context)

    assert raised.value.error == "States.Timeout"
    assert "TimeoutSeconds" in raised.value.cause
    assert airflow.run("orch_slow", run_id)["state"] == "failed"
    # the sleeping task is killed at its next heartbeat, not left running
    deadline = time.monotonic() + 120
    while airflow.task_states("orch_slow", run_id)["sleepy"] == "running":
        assert time.monotonic() < deadline, "the cancelled run's task is still running"
        time.sleep(0.5)


def _run_in_thread(executor: AirflowExecutor, context: Any) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = executor(context)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, outcome


def _wait_recorded(recorder: Recorder, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not recorder.events:
        assert time.monotonic() < deadline, "the executor never recorded ExternalRunStarted"
        time.sleep(0.1)


def test_stop_cancels_the_run_but_a_worker_shutdown_leaves_it_for_the_next_attempt(
    airflow: Airflow, airflow_config: Config, context_for: ContextFactory
) -> None:
    executor = executor_for(airflow_config)
    context, recorder = context_for("airflow:orch_slow", {"seconds": 600})
    run_id = run_id_for(context.execution, context.task.id)

    # the worker shuts down: cancelled is set, but the task still runs (heartbeat accepted)
    thread, outcome = _run_in_thread(executor, context)
    _wait_recorded(recorder)
    airflow.wait_for("orch_slow", run_id, {"running"})
    context.cancelled.set()
    thread.join(60)
    assert isinstance(outcome.get("error"), TaskCancelled)
    assert airflow.run("orch_slow", run_id)["state"] == "running"

    # the next worker runs the same attempt: it resumes waiting on the same run; then the task is stopped
    again, recorder_again = context_for(
        "airflow:orch_slow", {"seconds": 600}, execution=context.execution, recorder=Recorder()
    )
    thread, outcome = _run_in_thread(executor, again)
    _wait_recorded(recorder_again)
    assert recorder_again.started()["runId"] == run_id
    recorder_again.task_over.set()
    again.cancelled.set()
    thread.join(60)
    assert isinstance(outcome.get("error"), TaskCancelled)
    assert airflow.run("orch_slow", run_id)["state"] == "failed"
    assert [run["dag_run_id"] for run in airflow.runs("orch_slow")].count(run_id) == 1


def test_a_crash_after_triggering_never_starts_a_second_run(
    airflow: Airflow, airflow_config: Config, context_for: ContextFactory
) -> None:
    tag = label()
    executor = executor_for(airflow_config)
    context, _ = context_for("airflow:orch_sum", {"numbers": [1], "label": tag})

    class Crash(BaseException):
        """The worker dies right after triggering (before anything else is recorded)."""

    def crash(kind: str, details: dict[str, Any]) -> int:
        raise Crash

    context.record = crash
    with pytest.raises(Crash):
        executor(context)

    again, recorder = context_for(
        "airflow:orch_sum", {"numbers": [1], "label": tag}, execution=context.execution
    )
    assert executor(again) == {"label": tag, "sum": 1}
    mine = [run for run in airflow.runs("orch_sum") if (run["conf"] or {}).get("label") == tag]
    assert [run["dag_run_id"] for run in mine] == [run_id_for(context.execution, context.task.id)]
    assert recorder.started()["runId"] == mine[0]["dag_run_id"]

    # a retry is another attempt: another run
    retry, _ = context_for(
        "airflow:orch_sum", {"numbers": [2], "label": tag}, execution=context.execution, attempt=1
    )
    assert executor(retry) == {"label": tag, "sum": 2}
    assert len([run for run in airflow.runs("orch_sum") if (run["conf"] or {}).get("label") == tag]) == 2


def test_a_run_id_taken_by_another_conf_is_refused(
    airflow: Airflow, airflow_config: Config, context_for: ContextFactory
) -> None:
    context, _ = context_for("airflow:orch_sum", {"numbers": [1]})
    run_id = run_id_for(context.execution, context.task.id)
    answer = airflow.send(
        "POST",
        "/dags/orch_sum/dagRuns",
        {"logical_date": None, "dag_run_id": run_id, "conf": {"numbers": [9]}},
    )
    assert answer.status_code == 200, answer.text

    with pytest.raises(TaskError) as raised:
        executor_for(airflow_config)(context)
    assert raised.value.error == "Airflow.RunIdConflict"


def test_unknown_dag_and_unknown_result_task(airflow_config: Config, context_for: ContextFactory) -> None:
    executor = executor_for(airflow_config)
    with pytest.raises(TaskError) as raised:
        executor(context_for("airflow:no_such_dag", {})[0])
    assert (raised.value.error, raised.value.cause) == (
        "Airflow.DagNotFound",
        "Airflow connection 'local' has no DAG 'no_such_dag'",
    )
    with pytest.raises(TaskError) as raised:
        executor(context_for("airflow:orch_sum", {"ResultTask": "nope"})[0])
    assert raised.value.error == "Airflow.InvalidParameters"
    assert "prepare, total" in raised.value.cause
    with pytest.raises(TaskError) as raised:
        executor(context_for("airflow:orch_sum", [1, 2])[0])
    assert raised.value.error == "Airflow.InvalidParameters"


def test_refused_credentials_fail_the_task_clearly(
    airflow: Airflow, monkeypatch: pytest.MonkeyPatch, context_for: ContextFactory
) -> None:
    monkeypatch.setenv("ORCH_TEST_AIRFLOW_USER", "admin")
    monkeypatch.setenv("ORCH_TEST_AIRFLOW_PASSWORD", "wrong")
    config = Config({"airflow": {"connections": {"local": local_connection(airflow)}}})
    with pytest.raises(TaskError) as raised:
        executor_for(config)(context_for("airflow:orch_sum", {})[0])
    assert raised.value.error == "Airflow.ConnectionFailed"
    assert "/auth/token answered 401" in raised.value.cause
    assert "wrong" not in raised.value.cause

    monkeypatch.delenv("ORCH_TEST_AIRFLOW_PASSWORD")
    with pytest.raises(TaskError) as raised:
        executor_for(config)(context_for("airflow:orch_sum", {})[0])
    assert raised.value.cause == (
        "Airflow connection 'local': environment variable ORCH_TEST_AIRFLOW_PASSWORD is not set"
    )
