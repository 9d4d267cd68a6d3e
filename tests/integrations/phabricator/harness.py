"""The harness of the phabricator tests: a runtime on a backend, the app on uvicorn, a worker loop.

:func:`open_stack` opens a runtime on a database URL (SQLite or PostgreSQL) with a short
reconcile/report/retry rhythm (:func:`make_config`), publishes the ``release`` state machine and
serves the real app under uvicorn on a free loopback port; :meth:`Stack.drain` is the worker: it
claims due items of the runtime's queues and runs them with ``runtime.handle`` until a condition holds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fakes.phorge import CAPTURED_KEY, FakePhorge, WebhookSender

from orchestrator.api.app import create_app
from orchestrator.config import Config
from orchestrator.executions.tasks import TaskContext
from orchestrator.registry.service import Registry
from orchestrator.runtime import Runtime, build_runtime
from orchestrator.store import EventStore

RELEASE: dict[str, Any] = {
    "StartAt": "Approve",
    "States": {
        "Approve": {
            "Type": "Task",
            "Resource": "phabricator:approval",
            "Parameters": {"Revision.$": "$.revision", "Reviewers": ["carol", "dave"], "MinApprovals": 1},
            "ResultPath": "$.approval",
            "Catch": [{"ErrorEquals": ["Phabricator.Rejected", "Phabricator.Abandoned"], "Next": "Refused"}],
            "Next": "Deploy",
        },
        "Deploy": {"Type": "Task", "Resource": "reflow:deploy", "ResultPath": "$.deployed", "End": True},
        "Refused": {"Type": "Fail", "Error": "Release.Refused", "Cause": "the review refused it"},
    },
}


class Server:
    """The app under uvicorn in a thread, on a port the OS picked."""

    def __init__(self, runtime: Runtime) -> None:
        config = uvicorn.Config(
            create_app(runtime), host="127.0.0.1", port=0, log_config=None, access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@dataclass
class Stack:
    runtime: Runtime
    phorge: FakePhorge
    server: Server
    sender: WebhookSender
    deployed: list[dict[str, Any]] = field(default_factory=list)

    def drain(self, until: Callable[[], bool], *, timeout: float = 60.0, worker: str = "test-worker") -> None:
        """Be the worker until ``until()`` holds (fails after ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while not until():
            if time.monotonic() > deadline:
                raise AssertionError("condition not reached while draining the work queue")
            claimed = self.runtime.store.claim(worker, self.runtime.queues, 10, 60.0)
            for work in claimed:
                self.runtime.handle(work, worker)
            if not claimed:
                time.sleep(0.02)

    def settle(self, *, quiet: float = 0.3, timeout: float = 60.0) -> None:
        """Run work until nothing is due for ``quiet`` seconds."""
        last = [time.monotonic()]

        def idle() -> bool:
            claimed = self.runtime.store.claim("test-worker", self.runtime.queues, 10, 60.0)
            for work in claimed:
                self.runtime.handle(work, "test-worker")
            if claimed:
                last[0] = time.monotonic()
            return time.monotonic() - last[0] > quiet

        self.drain(idle, timeout=timeout)

    def post(self, body: bytes, signature: str | None = None) -> Any:
        return self.sender.send(body, signature)


def make_config(**extra: Any) -> Config:
    table: dict[str, Any] = {
        "reconcile_seconds": 0.5,
        "report_poll_seconds": 0.1,
        "retry_seconds": 0.05,
        "public_url": "https://orchestrator.example.com",
        "triggers": [{"start": "release:prod"}],
        "harbormaster": {"start": "release:prod"},
    }
    table.update(extra)
    return Config({"phabricator": table})


def open_stack(database_url: str, phorge: FakePhorge, config: Config) -> Stack:
    store = EventStore.from_url(database_url, auto_upgrade=True)
    runtime = build_runtime(store, config)
    # Published without the other integrations' definition checks: "reflow:deploy" names no real
    # Reflow network here; its executor below stands in for Reflow at the executor contract.
    Registry(store).publish("release", RELEASE, published_by="test")
    runtime.registry.set_alias("release", "prod", [(1, None)], by="test")
    server = Server(runtime)
    stack = Stack(runtime, phorge, server, WebhookSender(f"{server.url}/hooks/phabricator", CAPTURED_KEY))

    def deploy(context: TaskContext) -> dict[str, Any]:
        # Stands in for the Reflow runner at the executor contract: records what the engine hands a
        # task (the identity it runs under) and succeeds.
        stack.deployed.append({"execution": context.execution, "identity": context.identity})
        return {"identity": context.identity}

    runtime.executors["reflow"] = deploy
    return stack


def close_stack(stack: Stack) -> None:
    stack.sender.close()
    stack.server.close()
    stack.runtime.store.close()
