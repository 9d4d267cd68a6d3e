"""The durable commands through the real ``orchestrator`` executable, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

EXE = str(Path(sys.executable).with_name("orchestrator"))
ROOT = Path(__file__).resolve().parents[2]
SLOW = {
    "StartAt": "First",
    "States": {
        "First": {"Type": "Pass", "Result": "one", "ResultPath": "$.first", "Next": "Pause"},
        "Pause": {"Type": "Wait", "Seconds": 2, "Next": "Second"},
        "Second": {"Type": "Pass", "Result": "two", "ResultPath": "$.second", "End": True},
    },
}


def run(
    url: str, *args: str, check: bool = True, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ORCHESTRATOR_DATABASE_URL=url, ORCHESTRATOR_ACTOR="tester")
    proc = subprocess.run(
        [EXE, *args], capture_output=True, text=True, env=env, timeout=120, cwd=cwd, check=False
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture
def database_url(database_url: str) -> str:
    """The shared database fixture, with its schema applied the way an operator does it."""
    run(database_url, "db", "upgrade")
    return database_url


def out(proc: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(proc.stdout)


def test_publish_alias_start_wait_history_lineage(database_url: str, tmp_path: Path) -> None:
    hello = str(ROOT / "statemachines" / "hello.json")
    published = out(run(database_url, "publish", hello, "--alias", "prod", "--description", "first"))
    assert published["name"] == "hello" and published["version"] == 1 and len(published["sha256"]) == 64
    assert out(run(database_url, "publish", hello))["created"] is False
    changed = tmp_path / "hello.json"
    doc = json.loads(Path(hello).read_text())
    doc["States"]["Pause"]["Seconds"] = 0
    changed.write_text(json.dumps(doc))
    assert out(run(database_url, "publish", str(changed)))["version"] == 2
    diff = run(database_url, "diff", "hello", "1", "2").stdout
    assert "/States/Pause/Seconds" in diff and "- 2  + 0" in diff
    missing = run(database_url, "diff", "hello", "1", "3", check=False)
    assert missing.returncode == 2 and "hello has no version 3 (versions: 1..2)" in missing.stderr
    assert out(run(database_url, "alias", "set", "hello", "prod", "2"))["routing"] == [
        {"version": 2, "weight": 100}
    ]
    assert out(run(database_url, "alias", "rollback", "hello", "prod"))["routing"] == [
        {"version": 1, "weight": 100}
    ]
    run(database_url, "alias", "set", "hello", "prod", "2")
    versions = out(run(database_url, "versions", "hello", "--json"))
    assert [v["version"] for v in versions["versions"]] == [1, 2]

    started = out(
        run(database_url, "start", "hello:prod", "--input", '{"people": ["Ada"]}', "--name", "x1", "--wait")
    )
    assert started["status"] == "SUCCEEDED" and started["execution"] == "hello:x1" and started["version"] == 2
    assert started["output"] == [{"message": "Hello, Ada!"}]
    listed = out(run(database_url, "executions", "list", "--json"))
    assert [(r["execution"], r["status"], r["stateMachine"], r["version"]) for r in listed] == [
        ("hello:x1", "SUCCEEDED", "hello", 2)
    ]
    history = out(run(database_url, "history", "hello:x1", "--json"))
    assert history[0]["type"] == "ExecutionStarted" and history[-1]["type"] == "ExecutionSucceeded"
    assert "executionStartedEventDetails" in history[0] and history[1]["previousEventId"] == 0
    assert next(e["id"] for e in out(run(database_url, "history", "hello:x1", "--json", "--reverse"))) == len(
        history
    )
    table = run(database_url, "history", "hello:x1").stdout
    assert "MapIterationStarted" in table and "ID" in table.splitlines()[0]
    described = out(run(database_url, "describe", "hello:x1", "--json"))
    assert described["status"] == "SUCCEEDED" and described["startedBy"] == "tester"
    lineage = out(run(database_url, "lineage", "hello:x1", "--json"))
    assert lineage["version"]["number"] == 2 and lineage["alias"] == "prod"
    assert "definition  hello v2" in run(database_url, "lineage", "hello:x1").stdout


def test_bad_input_is_a_clear_error(database_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nowhere"}}}')
    proc = run(database_url, "publish", str(bad), check=False)
    assert proc.returncode == 2 and "Nowhere" in proc.stderr and "nothing was published" in proc.stderr
    assert run(database_url, "versions", "bad", check=False).returncode == 2
    proc = run(database_url, "describe", "bad:nope", check=False)
    assert proc.returncode == 2 and "unknown execution" in proc.stderr
    proc = run(database_url, "start", "nothing", check=False)
    assert proc.returncode == 2 and "unknown state machine" in proc.stderr


@pytest.mark.parametrize(
    "url", ["postgresql+psycopg://postgres@127.0.0.1:1/none", "mysql://x@y/z", "not a url"]
)
def test_unusable_database_urls(url: str) -> None:
    proc = run(url, "executions", "list", check=False)
    assert proc.returncode == 2 and proc.stderr.strip() and "Traceback" not in proc.stderr


def test_crash_between_steps_resumes_without_running_anything_twice(
    database_url: str, tmp_path: Path
) -> None:
    definition = tmp_path / "slow.json"
    definition.write_text(json.dumps(SLOW))
    run(database_url, "publish", str(definition))
    env = dict(os.environ, ORCHESTRATOR_DATABASE_URL=database_url)
    victim = subprocess.Popen(
        [EXE, "start", "slow", "--name", "c1", "--wait"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 30
    while time.time() < deadline:  # wait until the first step is committed, then kill -9 mid-Wait
        history = run(database_url, "history", "slow:c1", "--json", check=False)
        if history.returncode == 0 and any(
            e["type"] == "WaitStateEntered" for e in json.loads(history.stdout)
        ):
            break
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    mid = out(run(database_url, "describe", "slow:c1", "--json"))
    assert mid["status"] == "RUNNING"
    resumed = out(run(database_url, "start", "slow", "--name", "c1", "--wait"))
    assert resumed["status"] == "SUCCEEDED" and resumed["created"] is False
    assert resumed["output"] == {"first": "one", "second": "two"}
    types = [e["type"] for e in out(run(database_url, "history", "slow:c1", "--json"))]
    assert types.count("PassStateEntered") == 2 and types.count("WaitStateExited") == 1
    assert types.count("ExecutionSucceeded") == 1
