"""``orchestrator networks list|validate|run`` through the installed command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent / "orchestrator"


def cli(config_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN), "--config", str(config_file), "networks", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_list_shows_every_network_and_whether_it_is_valid(config_file: Path) -> None:
    proc = cli(config_file, "list", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {row["name"]: row for row in json.loads(proc.stdout)["networks"]}
    assert rows["squares"]["valid"] and rows["squares"]["nodes"] == 4
    assert rows["squares"]["input"] == "split.in" and rows["squares"]["output"] == "gather.out"
    assert rows["two_outputs"]["output"] == "items=split.items, count=split.count"
    assert not rows["broken"]["valid"] and "node 'ghost' does not exist" in rows["broken"]["problems"][0]
    table = cli(config_file, "list")
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert lines[0].split()[:5] == ["NAME", "VALID", "NODES", "INPUT", "OUTPUT"]
    assert any(line.startswith("broken") and "no (1 problems)" in line for line in lines)


def test_validate_prints_problems_by_file_and_pointer(config_file: Path) -> None:
    assert cli(config_file, "validate", "squares").stdout.startswith("valid: 1 network in ")
    proc = cli(config_file, "validate")
    assert proc.returncode == 1
    assert proc.stdout.strip().endswith(
        "broken.json:/connections/0/to: node 'ghost' does not exist (nodes: a)"
    )
    unknown = cli(config_file, "validate", "nope")
    assert unknown.returncode == 2 and "no reflow network 'nope'" in unknown.stderr


def test_run_prints_the_result_or_the_failure(config_file: Path) -> None:
    proc = cli(config_file, "run", "squares", "--input", "[3, 4]")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"status": "SUCCEEDED", "output": [9, 16]}
    failed = cli(config_file, "run", "boom", "--input", "[3]")
    assert failed.returncode == 1
    answer = json.loads(failed.stdout)
    assert answer["status"] == "FAILED" and answer["error"] == "Reflow.ActorFailed"
    timed_out = cli(config_file, "run", "hang", "--timeout", "1")
    assert timed_out.returncode == 1 and json.loads(timed_out.stdout)["error"] == "States.Timeout"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "squares", "--input", "[1,"], "error: --input: invalid JSON at line 1"),
        (["run", "squares", "--timeout", "0"], "error: --timeout must be a positive number"),
        (["run", "broken"], "error: invalid network:\n"),
        (["run", "nope"], "error: no reflow network 'nope'"),
    ],
)
def test_run_refuses_bad_input_with_exit_2(config_file: Path, args: list[str], message: str) -> None:
    proc = cli(config_file, *args)
    assert proc.returncode == 2 and proc.stderr.startswith(message), proc.stderr
