"""``orchestrator run-local``: one JSON object on stdout, exit 0 when the execution ran, exit 2 otherwise.

Bad input (a definition, input or mock file that cannot be used) must give a clear message and never a
Python traceback. Checked through the installed entry point in a real subprocess, through the same
``main()`` in-process, and through click's ``CliRunner``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from orchestrator.cli.main import cli, main
from orchestrator.errors import UsageError

ORCHESTRATOR = Path(sys.executable).with_name("orchestrator")
LAMBDA = "arn:aws:states:::lambda:invoke"

HELLO = {
    "StartAt": "Hello",
    "States": {
        "Hello": {
            "Type": "Pass",
            "Parameters": {"greeting.$": "States.Format('hello {}', $.name)"},
            "End": True,
        }
    },
}
TASKS = {
    "StartAt": "Charge",
    "States": {
        "Charge": {
            "Type": "Task",
            "Resource": LAMBDA,
            "Retry": [{"ErrorEquals": ["Card.Declined"], "IntervalSeconds": 60, "MaxAttempts": 1}],
            "Next": "Wait",
        },
        "Wait": {"Type": "Wait", "Seconds": 3600, "End": True},
    },
}


def write(tmp_path: Path, name: str, content: Any) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


def cli_main(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    """Run the real entry point in-process: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["orchestrator", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def usage_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code, out, err = cli_main(monkeypatch, capsys, "run-local", *args)
    assert code == 2, (code, out, err)
    assert out == ""
    assert "Traceback" not in err
    return err


# ---------------------------------------------------------------------------------------- subprocess
def test_subprocess_success_prints_one_json_object(tmp_path: Path) -> None:
    definition = write(tmp_path, "hello.json", HELLO)
    proc = subprocess.run(
        [str(ORCHESTRATOR), "run-local", str(definition), "--input", '{"name": "world"}'],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("\n") == 1
    assert json.loads(proc.stdout) == {"status": "SUCCEEDED", "output": {"greeting": "hello world"}}


def test_subprocess_mocks_history_and_simulated_time(tmp_path: Path) -> None:
    definition = write(tmp_path, "tasks.json", TASKS)
    mocks = write(
        tmp_path,
        "mocks.json",
        {"Charge": [{"Throw": {"Error": "Card.Declined", "Cause": "no"}}, {"Return": {"ok": True}}]},
    )
    proc = subprocess.run(
        [str(ORCHESTRATOR), "run-local", str(definition), "--mock", str(mocks), "--history"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["status"] == "SUCCEEDED"
    assert result["output"] == {"ok": True}
    history = result["history"]
    assert [e["id"] for e in history] == list(range(1, len(history) + 1))
    assert [e["type"] for e in history].count("TaskScheduled") == 2
    assert history[0]["executionStartedEventDetails"]["input"] == "{}"


def test_subprocess_failed_execution_exits_zero(tmp_path: Path) -> None:
    definition = write(
        tmp_path,
        "fail.json",
        {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Oops", "Cause": "on purpose"}}},
    )
    proc = subprocess.run(
        [str(ORCHESTRATOR), "run-local", str(definition)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0
    assert json.loads(proc.stdout) == {"status": "FAILED", "error": "Oops", "cause": "on purpose"}


@pytest.mark.parametrize(
    ("files", "args", "message"),
    [
        ({"d.json": '{"StartAt": "A",\n  "States": {\n'}, ["d.json"], "line 3 column 1"),
        ({"d.json": HELLO}, ["d.json", "--input", "{nope"], "--input: invalid JSON at line 1 column 2"),
        ({"d.json": HELLO}, ["missing.json"], "cannot read definition"),
        ({"d.json": HELLO, "m.json": "[1, 2"}, ["d.json", "--mock", "m.json"], "mock file"),
    ],
)
def test_subprocess_bad_input_exits_2_without_a_traceback(
    tmp_path: Path, files: dict[str, Any], args: list[str], message: str
) -> None:
    for name, content in files.items():
        write(tmp_path, name, content)
    proc = subprocess.run(
        [str(ORCHESTRATOR), "run-local", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


# ---------------------------------------------------------------------------------------- in-process main()
def test_malformed_definition_reports_line_and_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path, "bad.json", '{\n  "StartAt": "A",\n  "States": {"A": {"Type": "Pass" "End": true}}\n}\n'
    )
    err = usage_error(monkeypatch, capsys, str(path))
    assert "invalid JSON at line 3 column 35" in err
    assert str(path) in err


def test_definition_that_is_not_an_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    err = usage_error(monkeypatch, capsys, str(write(tmp_path, "list.json", [1, 2])))
    assert "must be a JSON object" in err


def test_wrong_field_type_is_an_invalid_definition(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    definition = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": "ten", "End": True}}}
    err = usage_error(monkeypatch, capsys, str(write(tmp_path, "d.json", definition)))
    assert "invalid definition" in err
    assert "/States/W/Seconds" in err


def test_unknown_state_type_is_an_invalid_definition(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    definition = {"StartAt": "X", "States": {"X": {"Type": "Teleport", "End": True}}}
    err = usage_error(monkeypatch, capsys, str(write(tmp_path, "d.json", definition)))
    assert "invalid definition" in err
    assert "/States/X" in err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "--input: invalid JSON at line 1 column 1"),
        ("", "--input: invalid JSON at line 1 column 1"),
        ('{"a": 1} trailing', "--input: invalid JSON at line 1 column 10"),
        ('{"a": NaN}', "NaN is not a JSON value"),
        ("[" * 100_000, "nested too deeply"),
    ],
)
def test_input_that_is_not_json(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    text: str,
    message: str,
) -> None:
    err = usage_error(monkeypatch, capsys, str(write(tmp_path, "d.json", HELLO)), "--input", text)
    assert message in err


def test_input_file_that_is_not_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    definition = write(tmp_path, "d.json", HELLO)
    data = write(tmp_path, "in.json", '{"name":\n')
    err = usage_error(monkeypatch, capsys, str(definition), "--input-file", str(data))
    assert f"input file {data}: invalid JSON at line 2 column 1" in err


def test_both_input_and_input_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    definition = write(tmp_path, "d.json", HELLO)
    data = write(tmp_path, "in.json", {"name": "x"})
    err = usage_error(monkeypatch, capsys, str(definition), "--input", "{}", "--input-file", str(data))
    assert "either --input or --input-file" in err


@pytest.mark.parametrize("option", ["--input-file", "--mock"])
def test_missing_input_or_mock_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], option: str
) -> None:
    definition = write(tmp_path, "d.json", HELLO)
    err = usage_error(monkeypatch, capsys, str(definition), option, str(tmp_path / "nope.json"))
    assert "cannot read" in err
    assert "nope.json" in err
    assert "No such file" in err


def test_a_directory_or_non_utf8_definition(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli_main(monkeypatch, capsys, "run-local", str(tmp_path))
    assert code == 2
    assert "Traceback" not in err
    assert out == ""
    err = usage_error(monkeypatch, capsys, str(write(tmp_path, "latin1.json", b'{"StartAt": "\xe9"}')))
    assert "not UTF-8" in err


@pytest.mark.parametrize(
    ("mocks", "message"),
    [
        ("{", "invalid JSON at line 1 column 2"),
        ([], "must be a JSON object"),
        ({"Hello": []}, "empty list of answers"),
        ({"Hello": {"Result": 1}}, '{"Return": <result>} or'),
        ({"Hello": {"Return": 1, "Throw": {"Error": "E"}}}, '{"Return": <result>} or'),
        ({"Hello": [{"Return": 1}, {"Throw": "boom"}]}, "'Hello'[1]: \"Throw\" needs"),
        ({"Hello": {"Throw": {"Error": "E", "Cause": 5}}}, "Cause must be a string"),
    ],
)
def test_malformed_mock_file(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    mocks: Any,
    message: str,
) -> None:
    definition = write(tmp_path, "d.json", HELLO)
    mock_file = write(tmp_path, "mocks.json", mocks)
    err = usage_error(monkeypatch, capsys, str(definition), "--mock", str(mock_file))
    assert message in err


def test_intrinsic_with_a_bad_argument_fails_the_execution_with_exit_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    definition = {
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.a, 1)"}, "End": True}},
    }
    code, out, err = cli_main(
        monkeypatch,
        capsys,
        "run-local",
        str(write(tmp_path, "d.json", definition)),
        "--input",
        '{"a": "one"}',
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["status"] == "FAILED"
    assert result["error"] == "States.IntrinsicFailure"
    assert result["cause"].startswith("An error occurred while executing the state 'P'")


def test_input_over_the_payload_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    definition = write(tmp_path, "d.json", HELLO)
    big = write(tmp_path, "big.json", {"name": "x" * (256 * 1024)})
    err = usage_error(monkeypatch, capsys, str(definition), "--input-file", str(big))
    assert "262144" in err


def test_input_exactly_at_the_payload_limit_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    definition = write(
        tmp_path,
        "d.json",
        {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": "small", "End": True}}},
    )
    exact = write(tmp_path, "exact.json", json.dumps("x" * (256 * 1024 - 2)))
    code, out, _ = cli_main(monkeypatch, capsys, "run-local", str(definition), "--input-file", str(exact))
    assert code == 0
    assert json.loads(out) == {"status": "SUCCEEDED", "output": "small"}


def test_history_flag_and_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    definition = {
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Pass",
                "Parameters": {"name.$": "$$.Execution.Name", "sm.$": "$$.StateMachine.Name"},
                "End": True,
            }
        },
    }
    code, out, _ = cli_main(
        monkeypatch,
        capsys,
        "run-local",
        str(write(tmp_path, "orders.json", definition)),
        "--history",
        "--name",
        "run-7",
    )
    assert code == 0
    result = json.loads(out)
    assert result["output"] == {"name": "run-7", "sm": "orders"}
    assert [e["type"] for e in result["history"]] == [
        "ExecutionStarted",
        "PassStateEntered",
        "PassStateExited",
        "ExecutionSucceeded",
    ]


# ---------------------------------------------------------------------------------------- CliRunner
def test_cli_runner_success_and_usage_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    definition = write(tmp_path, "d.json", HELLO)
    ok = runner.invoke(cli, ["run-local", str(definition), "--input", '{"name": "cli"}'])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output) == {"status": "SUCCEEDED", "output": {"greeting": "hello cli"}}
    bad = runner.invoke(cli, ["run-local", str(definition), "--input", "{"])
    assert isinstance(bad.exception, UsageError)
    assert "line 1 column 2" in str(bad.exception)
    both = runner.invoke(
        cli, ["run-local", str(definition), "--input", "{}", "--input-file", str(definition)]
    )
    assert isinstance(both.exception, UsageError)


def test_cli_runner_click_errors_exit_2(tmp_path: Path) -> None:
    runner = CliRunner()
    missing_arg = runner.invoke(cli, ["run-local"])
    assert missing_arg.exit_code == 2
    assert "Missing argument" in missing_arg.output
    unknown = runner.invoke(cli, ["run-local", str(write(tmp_path, "d.json", HELLO)), "--bogus"])
    assert unknown.exit_code == 2
    assert "No such option" in unknown.output
