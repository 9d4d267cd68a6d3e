"""Shared fixtures of the integration tests: AWS as a real HTTP endpoint (moto in server mode).

``moto_server`` (one per test session and xdist worker) is a ``moto`` server in a child process on
127.0.0.1, on a port the OS picked, recording every request it receives (moto's recorder, read back
through ``/moto-api/recorder/download-recording``), so a test can assert what was really sent: the
AssumeRole parameters, the Secrets Manager reads. ``aws`` hands it to one test with a clean slate
(moto's state reset, an empty recording) and the process's AWS credentials set to moto's dummy ones;
``MotoServer.write_config`` writes an ``orchestrator.toml`` whose ``[aws] endpoint_url`` points at it.

``moto_factory`` starts extra servers for one test, e.g. one that enforces IAM policies
(``enforce_iam_after=N``: moto's ``INITIAL_NO_AUTH_ACTION_COUNT``, the first N requests set things up
unchecked, every later one must be signed by a moto IAM user whose policies allow it).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import httpx
import pytest

REGION = "us-east-1"
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}

_LAUNCHER = """
import os, sys, threading
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer("127.0.0.1", 0, verbose=False)
server.start()
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(server.get_host_and_port()[1]))
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
threading.Event().wait()
"""


@dataclass
class RecordedRequest:
    """One request moto received: method, path, headers and the decoded form parameters."""

    method: str
    url: str
    headers: dict[str, str]
    body: str
    params: dict[str, str]

    @property
    def action(self) -> str | None:
        """The API action (``AssumeRole``, ``GetSecretValue``...), for query and JSON protocols."""
        target = self.headers.get("X-Amz-Target") or self.headers.get("x-amz-target")
        if target:
            return target.rsplit(".", 1)[-1]
        return self.params.get("Action")


@dataclass
class MotoServer:
    """A running moto server."""

    url: str
    process: subprocess.Popen[bytes]

    def reset(self) -> None:
        """Forget every resource and every recorded request."""
        httpx.post(f"{self.url}/moto-api/reset", timeout=30).raise_for_status()
        httpx.post(f"{self.url}/moto-api/recorder/reset-recording", timeout=30).raise_for_status()

    def requests(self, action: str | None = None) -> list[RecordedRequest]:
        """The requests received since the last reset (only those of ``action`` when given)."""
        text = httpx.get(f"{self.url}/moto-api/recorder/download-recording", timeout=30).text
        out = []
        for line in text.splitlines():
            if not line.strip():
                continue
            entry = json.loads(line)
            body = entry.get("body") or ""
            if entry.get("body_encoded"):
                body = base64.b64decode(body).decode("utf-8", "replace")
            query = urlsplit(entry["url"]).query
            params = {k: v[-1] for k, v in parse_qs(query).items()}
            if "json" not in str(entry["headers"].get("Content-Type", "")):
                params.update({k: v[-1] for k, v in parse_qs(body).items()})
            recorded = RecordedRequest(entry["method"], entry["url"], dict(entry["headers"]), body, params)
            if action is None or recorded.action == action:
                out.append(recorded)
        return out

    def client(self, service: str, **credentials: str) -> Any:
        """A boto3 client for ``service`` on this server (moto's dummy credentials by default)."""
        return boto3.session.Session().client(
            service,
            region_name=REGION,
            endpoint_url=self.url,
            aws_access_key_id=credentials.get("access_key_id", "testing"),
            aws_secret_access_key=credentials.get("secret_access_key", "testing"),
            aws_session_token=credentials.get("session_token"),
        )

    def write_config(self, path: Path, extra: str = "") -> Path:
        """Write an ``orchestrator.toml`` at ``path`` whose ``[aws]`` table points at this server;
        ``extra`` is TOML appended as is (``[[aws.roles]]`` entries, other integrations' tables)."""
        path.write_text(
            f'[aws]\nendpoint_url = "{self.url}"\nregion = "{REGION}"\n\n{extra}', encoding="utf-8"
        )
        return path

    def stop(self) -> None:
        """Stop the server process."""
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=20)


def start_moto(
    directory: Path, *, enforce_iam_after: int | None = None, timeout: float = 120.0
) -> MotoServer:
    """Start a moto server in a child process and wait until it listens."""
    directory.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
    env.update(
        DUMMY_CREDENTIALS,
        AWS_DEFAULT_REGION=REGION,
        MOTO_ENABLE_RECORDING="true",
        MOTO_RECORDER_FILEPATH=str(directory / "moto-recording.jsonl"),
    )
    if enforce_iam_after is not None:
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(enforce_iam_after)
    port_file = directory / "moto-server.port"
    log_file = directory / "moto-server.log"
    with log_file.open("w") as server_log:
        process = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, str(port_file)],
            stdout=server_log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=directory,
        )
    deadline = time.monotonic() + timeout
    while not port_file.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.1)
    if not port_file.exists():
        process.kill()
        process.wait(timeout=20)
        log = log_file.read_text(encoding="utf-8", errors="replace")
        pytest.fail(f"the moto server did not start within {timeout:.0f}s: {log[-2000:]}")
    line = port_file.read_text(encoding="utf-8")
    server = MotoServer(f"http://127.0.0.1:{int(line)}", process)
    while time.monotonic() < deadline:  # the port was written after the bind: this only waits for the app
        try:
            httpx.get(f"{server.url}/moto-api/data.json", timeout=10).raise_for_status()
            return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.stop()
    pytest.fail(f"the moto server at {server.url} does not answer")


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """One moto server for the session (per xdist worker)."""
    server = start_moto(tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


def _dummy_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    # never read the developer's ~/.aws files
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


@pytest.fixture
def aws(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> MotoServer:
    """The session's moto server with nothing in it, and the process's AWS credentials set to moto's
    dummy ones (``AWS_*`` variables of the environment are hidden for the test)."""
    moto_server.reset()
    _dummy_credentials(monkeypatch, tmp_path)
    return moto_server


@pytest.fixture
def moto_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., MotoServer]]:
    """Start extra moto servers for one test (``moto_factory(enforce_iam_after=N)``); stopped after."""
    _dummy_credentials(monkeypatch, tmp_path)
    started: list[MotoServer] = []

    def start(*, enforce_iam_after: int | None = None) -> MotoServer:
        server = start_moto(tmp_path / f"moto-{len(started)}", enforce_iam_after=enforce_iam_after)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
