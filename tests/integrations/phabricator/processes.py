"""The harness of the process tests: ``orchestrator serve`` and ``orchestrator worker`` as real child
processes on one database, the fake Phorge and moto as the outside world.

:func:`write_config` writes the one ``orchestrator.toml`` both processes read: ``[aws]`` pointing at
the moto server with a role map that runs the ``deploy`` Lambda function (:mod:`.deploy_plugin`)
under ``release-deployer``, ``[phabricator]`` pointing at the fake Phorge with a trigger starting
``release:prod`` on every accepted revision, and a quick ``[worker]`` rhythm. The Conduit token and the
webhook HMAC key reach the processes through the environment only (``ORCHESTRATOR_PHABRICATOR_TOKEN``,
``ORCHESTRATOR_PHABRICATOR_HMAC_KEY``), like the database URL and the configuration file's path.

:class:`Processes` starts them (``serve`` on a free loopback port, ``worker`` with
``--plugin integrations.phabricator.deploy_plugin:install``), runs other commands (``db upgrade``,
``publish``, ``workers --json``, ``lineage --json``), reads the store directly to wait for conditions,
and kills whatever still runs at the end. A wait that times out says what it waited for and shows the
tail of every process's log.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import httpx
from fakes.phorge import FakePhorge, Revision

from orchestrator.runtime import Runtime, build_runtime
from orchestrator.store import EventStore

from ..conftest import MotoServer
from .deploy_plugin import DEPLOY

TESTS = Path(__file__).resolve().parents[2]
ORCHESTRATOR = Path(sys.executable).with_name("orchestrator")
PLUGIN = "integrations.phabricator.deploy_plugin:install"
ACCOUNT = "123456789012"
DEPLOYER = f"arn:aws:iam::{ACCOUNT}:role/release-deployer"
PUBLIC_URL = "https://orchestrator.example.com"
HMAC_KEY = "k3yfromtheenvironmentnotthefile0"

RELEASE: dict[str, Any] = {
    "Comment": "A release: approved in Phabricator, deployed under the approver's identity.",
    "StartAt": "Approve",
    "States": {
        "Approve": {
            "Type": "Task",
            "Resource": "phabricator:approval",
            "Parameters": {"Revision.$": "$.revision", "Reviewers": ["carol"], "MinApprovals": 1},
            "ResultPath": "$.approval",
            "Next": "Deploy",
        },
        "Deploy": {
            "Type": "Task",
            "Resource": DEPLOY,
            "Parameters": {"revision.$": "$.revision.id", "approver.$": "$.approval.approver"},
            "ResultPath": "$.deployed",
            "End": True,
        },
    },
}


def write_config(path: Path, aws: MotoServer, phorge: FakePhorge) -> Path:
    """The configuration of both processes (no secret in it)."""
    extra = f"""
[[aws.roles]]
state_machine = "release"
resource = "arn:aws:lambda:*"
role_arn = "{DEPLOYER}"

[[aws.allow]]
state_machine = "*"
roles = ["arn:aws:iam::{ACCOUNT}:role/release-*"]

[phabricator]
url = "{phorge.url}"
public_url = "{PUBLIC_URL}"
reconcile_seconds = 30
report_poll_seconds = 0.3
retry_seconds = 0.2

[[phabricator.triggers]]
start = "release:prod"

[worker]
poll_seconds = 1
lease_seconds = 5
registry_seconds = 0.5
"""
    return aws.write_config(path, extra)


def trust_policy() -> str:
    statement = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def run_of(revision: Revision) -> str:
    """The execution a trigger starts for the revision's current diff (one per accepted diff)."""
    return f"release:D{revision.id}-{revision.diff.removeprefix('PHID-DIFF-')}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Processes:
    """The child processes of one test, on ``database_url`` with the configuration at ``config``."""

    def __init__(self, folder: Path, database_url: str, config: Path, phorge: FakePhorge) -> None:
        self.folder = folder
        self.database_url = database_url
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATOR_")},
            "PYTHONPATH": str(TESTS),
            "ORCHESTRATOR_DATABASE_URL": database_url,
            "ORCHESTRATOR_CONFIG": str(config),
            "ORCHESTRATOR_PHABRICATOR_TOKEN": phorge.token,
            "ORCHESTRATOR_PHABRICATOR_HMAC_KEY": HMAC_KEY,
        }
        self.running: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._logs: list[IO[bytes]] = []
        self._store: EventStore | None = None
        self._runtime: Runtime | None = None

    # ------------------------------------------------------------------ processes
    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.folder / f"{name}.log").open("wb")
        self._logs.append(log)
        process = subprocess.Popen(
            [str(ORCHESTRATOR), "--log-level", "info", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.folder,
        )
        self.running.append((name, process))
        return process

    def serve(self, timeout: float = 60.0) -> str:
        """Start ``orchestrator serve`` on a free port; its base URL once it answers."""
        port = free_port()
        process = self._spawn(f"serve-{port}", "serve", "--host", "127.0.0.1", "--port", str(port))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while True:
            try:
                httpx.get(f"{url}/hooks/phabricator", timeout=5)
                return url
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"orchestrator serve did not start\n{self.logs()}") from None
                time.sleep(0.1)

    def worker(self, *args: str) -> subprocess.Popen[bytes]:
        """Start ``orchestrator worker --plugin <the deploy function> ARGS``."""
        count = sum(1 for name, _ in self.running if name.startswith("worker"))
        return self._spawn(f"worker-{count}", "worker", "--plugin", PLUGIN, *args)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``orchestrator ARGS`` to its end; fails on a non-zero exit."""
        result = subprocess.run(
            [str(ORCHESTRATOR), *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.folder,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
        return result

    def cli_json(self, *args: str) -> Any:
        return json.loads(self.cli(*args).stdout)

    def logs(self) -> str:
        parts = []
        for name, _ in self.running:
            text = (self.folder / f"{name}.log").read_text(errors="replace")
            parts.append(f"--- {name}.log (tail)\n{text[-3000:]}")
        return "\n".join(parts)

    def close(self) -> None:
        for _, process in self.running:
            if process.poll() is None:
                process.kill()
                process.wait(30)
        for log in self._logs:
            log.close()
        if self._store is not None:
            self._store.close()

    # ------------------------------------------------------------------ reading the store
    @property
    def store(self) -> EventStore:
        """This test's own connection to the database (reads only)."""
        if self._store is None:
            self._store = EventStore.from_url(self.database_url)
        return self._store

    def events(self, stream: str) -> list[str]:
        return [record.type for record in self.store.read_stream(stream)]

    def history(self, execution: str) -> list[dict[str, Any]]:
        """The execution's events, each its details with its ``type`` and ``timestamp`` (epoch seconds)."""
        if self._runtime is None:
            self._runtime = build_runtime(self.store, integrations=False)
        events = self._runtime.executions.history(execution)
        return [{"type": e.type, "timestamp": e.timestamp, **e.details} for e in events]

    def status(self, execution: str) -> str | None:
        """RUNNING, SUCCEEDED... from the last event of the execution; None before it exists."""
        types = self.events(f"execution:{execution}")
        if not types:
            return None
        ended = {
            "ExecutionSucceeded": "SUCCEEDED",
            "ExecutionFailed": "FAILED",
            "ExecutionAborted": "ABORTED",
            "ExecutionTimedOut": "TIMED_OUT",
        }
        return next((ended[t] for t in reversed(types) if t in ended), "RUNNING")

    def gate_open(self, execution: str) -> bool:
        """The execution waits at its approval gate."""
        return self.status(execution) == "RUNNING" and "ApprovalRequested" in self.events(
            f"execution:{execution}"
        )

    def wait_for_status(self, execution: str, status: str, timeout: float = 60.0) -> None:
        """Wait until ``execution`` ends with ``status``; fail at once if it ends otherwise."""

        def ended() -> bool:
            now = self.status(execution)
            if now not in (None, "RUNNING", status):
                failed = [e for e in self.history(execution) if e["type"].endswith("Failed")]
                raise AssertionError(f"{execution} ended {now}, not {status}: {failed}\n{self.logs()}")
            return now == status

        self.wait(ended, f"{execution} to end {status}", timeout)

    def wait(self, condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
        """Poll ``condition`` until it holds; fail after ``timeout`` seconds, with the processes' logs."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{self.logs()}")
            for name, process in self.running:
                if name.startswith("serve") and process.poll() is not None:
                    raise AssertionError(f"{name} exited ({process.returncode})\n{self.logs()}")
            time.sleep(0.1)
