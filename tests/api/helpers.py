"""Helpers of the API tests: a real runtime behind the real FastAPI app, and a token per role.

Task states run through a small executor registered for the ``reflow`` scheme (an executor is the
integrations' plug-in point; the reflow integration is not installed): ``reflow:ok`` returns
``{"ok": true}``, ``reflow:fail`` fails with
``Deploy.Failed``. Everything else is the production code: no mocks.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from fastapi.testclient import TestClient

from orchestrator.executions.tasks import TaskContext, TaskError
from orchestrator.runtime import Runtime, build_runtime
from orchestrator.store import EventStore

ROOT = Path(__file__).resolve().parents[2]

RELEASE = {
    "Comment": "Build, deploy; a failed deploy is caught, rolled back and reported.",
    "StartAt": "Build",
    "States": {
        "Build": {"Type": "Task", "Resource": "reflow:ok", "ResultPath": "$.build", "Next": "Deploy"},
        "Deploy": {
            "Type": "Task",
            "Resource": "reflow:deploy",
            "ResultPath": "$.deploy",
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Rollback"}],
            "Next": "Released",
        },
        "Rollback": {"Type": "Task", "Resource": "reflow:ok", "ResultPath": None, "Next": "ReleaseFailed"},
        "ReleaseFailed": {"Type": "Fail", "Error": "Release.Failed", "Cause": "deploy failed, rolled back"},
        "Released": {"Type": "Succeed"},
    },
}

UNCAUGHT = {
    "StartAt": "Build",
    "States": {
        "Build": {"Type": "Task", "Resource": "reflow:ok", "Next": "Deploy"},
        "Deploy": {"Type": "Task", "Resource": "reflow:fail", "Next": "Done"},
        "Done": {"Type": "Succeed"},
    },
}

SLOW = {
    "StartAt": "First",
    "States": {
        "First": {"Type": "Pass", "Result": 1, "ResultPath": "$.first", "Next": "Pause"},
        "Pause": {"Type": "Wait", "Seconds": 3600, "Next": "Done"},
        "Done": {"Type": "Succeed"},
    },
}


def executor(context: TaskContext) -> Any:
    """Stands in for reflow: ``ok`` succeeds, ``fail`` fails, ``deploy`` fails when the input says so."""
    name = context.resource_name
    params = context.task.parameters
    parsed = json.loads(params) if isinstance(params, str) else params
    if name == "fail" or (name == "deploy" and isinstance(parsed, dict) and parsed.get("fail")):
        raise TaskError("Deploy.Failed", "boom: the disk is full")
    return {"ok": True}


@dataclass
class Api:
    """The app, its runtime and one token per role."""

    runtime: Runtime
    client: TestClient
    tokens: dict[str, str]

    def headers(self, role: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}

    def get(self, path: str, role: str | None = "viewer", **kwargs: Any) -> Any:
        return self.client.get(path, headers=self.headers(role), **kwargs)

    def post(self, path: str, role: str | None = "operator", **kwargs: Any) -> Any:
        return self.client.post(path, headers=self.headers(role), **kwargs)

    def put(self, path: str, role: str | None = "admin", **kwargs: Any) -> Any:
        return self.client.put(path, headers=self.headers(role), **kwargs)

    def run(self, execution: str) -> dict[str, Any]:
        """Drive ``execution`` to its end in this process; its description."""
        self.runtime.executions.run_until_settled(execution, timeout=60)
        return self.runtime.executions.describe(execution)


def make_runtime(url: str) -> Runtime:
    store = EventStore.from_url(url, auto_upgrade=True)
    runtime = build_runtime(store, integrations=False)
    runtime.executors["reflow"] = executor
    return runtime


def publish(api: Api, name: str, definition: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """Publish through the API as an admin."""
    response = api.post(
        f"/api/state-machines/{name}/versions", role="admin", json={"definition": definition, **extra}
    )
    assert response.status_code in (200, 201), response.text
    result: dict[str, Any] = response.json()
    return result


def start(api: Api, reference: str, value: Any = None, name: str | None = None) -> str:
    """Start through the API as an operator; the execution id."""
    body: dict[str, Any] = {"stateMachine": reference, "input": value if value is not None else {}}
    if name:
        body["name"] = name
    response = api.post("/api/executions", json=body)
    assert response.status_code in (200, 201), response.text
    return str(response.json()["execution"])


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve ``app`` with a real uvicorn on a free port in a thread; yields its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
