"""The CLI for people: ``history --follow`` streams events, ``start --wait`` shows progress on a terminal
(and only JSON otherwise), tables fit the terminal width. Through the real executable, on SQLite."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

EXE = str(Path(sys.executable).with_name("orchestrator"))
PAUSE = {
    "StartAt": "Prepare",
    "States": {
        "Prepare": {"Type": "Pass", "Result": "ready", "ResultPath": "$.prepared", "Next": "Pause"},
        "Pause": {"Type": "Wait", "Seconds": 2, "Next": "Finish"},
        "Finish": {"Type": "Pass", "End": True},
    },
}


def env(url: str, **extra: str) -> dict[str, str]:
    return dict(os.environ, ORCHESTRATOR_DATABASE_URL=url, ORCHESTRATOR_ACTOR="tester", **extra)


def run(url: str, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [EXE, *args], capture_output=True, text=True, env=env(url, **extra), timeout=120, check=False
    )
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_history_follow_streams_until_the_end(sqlite_url: str, tmp_path: Path) -> None:
    definition = tmp_path / "pause.json"
    definition.write_text(json.dumps(PAUSE))
    run(sqlite_url, "publish", str(definition))
    run(sqlite_url, "start", "pause", "--name", "p1")
    follower = subprocess.Popen(
        [EXE, "history", "pause:p1", "--follow", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(sqlite_url),
    )
    try:
        driven = run(sqlite_url, "start", "pause", "--name", "p1", "--wait")
        assert json.loads(driven.stdout)["status"] == "SUCCEEDED"
        out, err = follower.communicate(timeout=60)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert follower.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["type"] == "ExecutionStarted" and events[-1]["type"] == "ExecutionSucceeded"
    assert "WaitStateExited" in [e["type"] for e in events]

    table = run(sqlite_url, "history", "pause:p1", "--follow", COLUMNS="200").stdout.splitlines()
    assert table[0].split() == ["ID", "TYPE", "STATE", "ELAPSED", "DETAIL"]
    assert table[-1].split()[:2] == [str(len(events)), "ExecutionSucceeded"]
    refused = subprocess.run(
        [EXE, "history", "pause:p1", "--follow", "--reverse"],
        capture_output=True,
        text=True,
        env=env(sqlite_url),
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2 and "--reverse" in refused.stderr


def test_start_wait_progress_on_a_terminal_only(sqlite_url: str, tmp_path: Path) -> None:
    definition = tmp_path / "pause.json"
    definition.write_text(json.dumps(PAUSE))
    run(sqlite_url, "publish", str(definition))
    piped = run(sqlite_url, "start", "pause", "--name", "quiet", "--wait")
    assert json.loads(piped.stdout)["status"] == "SUCCEEDED" and piped.stderr == ""

    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(
            [EXE, "start", "pause", "--name", "loud", "--wait"],
            stdout=subprocess.PIPE,
            stderr=follower,
            text=True,
            env=env(sqlite_url, COLUMNS="100"),
            timeout=120,
            check=False,
        )
        os.close(follower)
        follower = -1
        progress = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            progress += chunk
    finally:
        if follower != -1:
            os.close(follower)
        os.close(leader)
    assert proc.returncode == 0 and json.loads(proc.stdout)["status"] == "SUCCEEDED"
    text = progress.decode()
    assert "RUNNING" in text and "Pause" in text and "events, last" in text
    assert any(part.strip().endswith("s") for part in text.split("  ")), text  # the elapsed seconds


def test_tables_fit_the_terminal(sqlite_url: str, tmp_path: Path) -> None:
    definition = tmp_path / "a-state-machine-with-a-rather-long-name.json"
    definition.write_text(json.dumps(PAUSE))
    run(sqlite_url, "publish", str(definition))
    long_name = "an-execution-whose-name-is-long-enough-to-overflow-a-narrow-terminal"
    run(sqlite_url, "start", definition.stem, "--name", long_name, "--wait")
    for columns in (60, 80, 100):
        for args in (["executions", "list"], ["history", f"{definition.stem}:{long_name}"]):
            lines = run(sqlite_url, *args, COLUMNS=str(columns)).stdout.splitlines()
            assert len(lines) > 1
            assert all(len(line) <= columns for line in lines), (columns, args, lines)
            assert lines[0].split()[0] in ("EXECUTION", "ID")
    wide = run(sqlite_url, "executions", "list", COLUMNS="400").stdout
    assert f"{definition.stem}:{long_name}" in wide  # nothing is cut when there is room
