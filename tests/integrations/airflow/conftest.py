"""Fixtures of the Airflow integration tests: one real Airflow 3 for the whole test run.

``airflow`` starts Airflow (api-server + scheduler, SQLite, loopback; see :mod:`.server`) once and
shares it between the xdist workers of the run: the first worker to need it starts it under a file
lock and writes where it listens; the others attach to it; the last one to finish stops it. Without
the Airflow venv the tests are skipped locally with the reason, and fail loudly when ``CI=true``.

``airflow_config`` is a configuration with a connection ``local`` to it (also the default), its
credentials in environment variables; ``context_for`` builds a :class:`TaskContext` to call the
executor directly, as a worker would.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrator.config import Config
from orchestrator.engine.events import HistoryEvent
from orchestrator.engine.interpreter import TaskRequest
from orchestrator.executions.tasks import TaskContext

from .server import PASSWORD, USERNAME, VENV, AirflowServer, AirflowUnavailable, installed, stop_groups

USER_ENV, PASSWORD_ENV = "ORCH_TEST_AIRFLOW_USER", "ORCH_TEST_AIRFLOW_PASSWORD"


@dataclass
class Airflow:
    """The running Airflow, with a small REST client of our own to look at what happened there."""

    url: str
    _token: str = ""

    def _headers(self) -> dict[str, str]:
        if not self._token:
            response = httpx.post(
                f"{self.url}/auth/token", json={"username": USERNAME, "password": PASSWORD}, timeout=30
            )
            response.raise_for_status()
            self._token = response.json()["access_token"]
        return {"Authorization": f"Bearer {self._token}"}

    def get(self, path: str, **params: Any) -> Any:
        response = httpx.get(f"{self.url}/api/v2{path}", params=params, headers=self._headers(), timeout=30)
        response.raise_for_status()
        return response.json()

    def send(self, method: str, path: str, body: Any, **params: Any) -> httpx.Response:
        return httpx.request(
            method, f"{self.url}/api/v2{path}", json=body, params=params, headers=self._headers(), timeout=30
        )

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        """Every run of ``dag_id``."""
        return list(self.get(f"/dags/{dag_id}/dagRuns", limit=100)["dag_runs"])

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return dict(self.get(f"/dags/{dag_id}/dagRuns/{run_id}"))

    def wait_for(self, dag_id: str, run_id: str, states: set[str], timeout: float = 120) -> dict[str, Any]:
        """Poll until the run is in one of ``states``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                run = self.run(dag_id, run_id)
            except httpx.HTTPStatusError:
                run = {"state": "absent"}
            if run["state"] in states:
                return run
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id} of {dag_id} stayed {run['state']}, wanted {states}")
            time.sleep(0.3)

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        answer = self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        return {ti["task_id"]: ti["state"] for ti in answer["task_instances"]}


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/v2/version", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="session")
def airflow(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Iterator[Airflow]:
    """The test run's Airflow (shared by the xdist workers; see the module docstring)."""
    if not installed():
        reason = f"no Airflow venv at {VENV}: run .ci/install.d/10-airflow.sh"
        if os.environ.get("CI") == "true":
            pytest.fail(f"Airflow is required in CI: {reason}")
        pytest.skip(reason)
    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if worker_id != "master" else base) / "airflow-shared"
    info_file, lock = shared / "server.json", shared / "lock"
    with _locked(lock):
        info = json.loads(info_file.read_text()) if info_file.exists() else None
        if info is None or not _answers(info["url"]):
            server = AirflowServer(shared / "home")
            started = time.monotonic()
            try:
                server.start()
            except AirflowUnavailable as exc:
                server.stop()
                pytest.fail(str(exc))
            info = {"url": server.base_url, "pids": [p.pid for p in server.processes], "users": 0}
            info["start_seconds"] = round(time.monotonic() - started, 1)
        info["users"] += 1
        info_file.write_text(json.dumps(info))
    yield Airflow(info["url"])
    with _locked(lock):
        info = json.loads(info_file.read_text())
        info["users"] -= 1
        if info["users"] <= 0:
            stop_groups(info["pids"])
            info_file.unlink()
        else:
            info_file.write_text(json.dumps(info))


@pytest.fixture
def airflow_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The local Airflow's credentials in the environment variables the connection names."""
    monkeypatch.setenv(USER_ENV, USERNAME)
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)


def local_connection(airflow: Airflow, **extra: Any) -> dict[str, Any]:
    """The ``[airflow.connections.local]`` table for the test Airflow."""
    return {
        "base_url": airflow.url,
        "username_env": USER_ENV,
        "password_env": PASSWORD_ENV,
        "poll_max_seconds": 1,
        **extra,
    }


@pytest.fixture
def airflow_config(airflow: Airflow, airflow_env: None) -> Config:
    """A configuration whose (default) connection ``local`` is the test Airflow."""
    return Config(
        {"airflow": {"default_connection": "local", "connections": {"local": local_connection(airflow)}}}
    )


@dataclass
class Recorder:
    """What an executor recorded through :attr:`TaskContext.record` and how often it heartbeat."""

    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    heartbeats: int = 0
    task_over: threading.Event = field(default_factory=threading.Event)

    def record(self, kind: str, details: dict[str, Any]) -> int:
        self.events.append((kind, details))
        return len(self.events)

    def heartbeat(self, details: Mapping[str, Any] | None = None) -> None:
        from orchestrator.executions.tasks import TaskCancelled

        self.heartbeats += 1
        if self.task_over.is_set():
            raise TaskCancelled("the task no longer runs")

    def started(self) -> dict[str, Any]:
        """The details of the one ``ExternalRunStarted``."""
        found = [details for kind, details in self.events if kind == "ExternalRunStarted"]
        assert len(found) == 1, self.events
        return found[0]


ContextFactory = Callable[..., tuple[TaskContext, Recorder]]


@pytest.fixture
def context_for() -> ContextFactory:
    """``context_for(resource, parameters, execution=..., timeout=..., history=...)``: a task context
    for one attempt, recording into a :class:`Recorder`."""

    def make(
        resource: str,
        parameters: Any,
        *,
        execution: str = "",
        attempt: int = 0,
        timeout: int | None = None,
        heartbeat: int | None = None,
        history: tuple[HistoryEvent, ...] = (),
        role_environment: dict[str, str] | None = None,
        recorder: Recorder | None = None,
    ) -> tuple[TaskContext, Recorder]:
        recorder = recorder or Recorder()
        execution = execution or f"airflow-test:{os.urandom(6).hex()}"
        request = TaskRequest(
            id=f"#Run#2#{attempt}",
            state_name="Run",
            resource=resource,
            parameters=parameters,
            timeout_seconds=timeout,
            heartbeat_seconds=heartbeat,
            credentials=None,
            attempt=attempt,
            scope="",
            started=True,
        )
        context = TaskContext(
            execution=execution,
            task=request,
            state_machine="airflow-test",
            version=1,
            identity="tester",
            history=history,
            role_environment=role_environment,
            heartbeat=recorder.heartbeat,
            record=recorder.record,
        )
        return context, recorder

    return make
