"""``orchestrator networks list|validate|run``: Reflow networks on their own, without a database.

``validate`` checks everything the executor checks before a run, and imports the actor classes to do
it; problems are printed one per line as ``FILE:POINTER: message`` (exit 1). ``run`` runs a network
exactly as a Task state does, in a child process, and prints one JSON object:
``{"status": "SUCCEEDED", "output": ...}`` (exit 0) or ``{"status": "FAILED", "error", "cause"}``
(exit 1). An unknown network, bad input or bad option is a usage error (exit 2).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from orchestrator.cli.durable import load_config
from orchestrator.cli.inputs import input_options, read_input
from orchestrator.cli.tables import table
from orchestrator.errors import UsageError
from orchestrator.executions.tasks import TaskError
from orchestrator.integrations.reflow.catalog import ReflowSettings
from orchestrator.integrations.reflow.components import resolve, search_path
from orchestrator.integrations.reflow.runner import run_isolated
from orchestrator.integrations.reflow.spec import NetworkInvalid, NetworkSpec


def _settings() -> ReflowSettings:
    return ReflowSettings.from_config(load_config())


def _check(settings: ReflowSettings, name: str) -> tuple[NetworkSpec | None, list[str]]:
    """The network and the problems of a full validation (imports its actor classes)."""
    try:
        spec = settings.load(name)
        with search_path(settings.pythonpath):
            resolve(spec)
    except NetworkInvalid as exc:
        return None, exc.lines()
    return spec, []


def _endpoint_text(spec: NetworkSpec) -> str:
    if spec.output is not None:
        return str(spec.output)
    return ", ".join(f"{name}={end}" for name, end in (spec.outputs or {}).items())


@click.group("networks")
def networks() -> None:
    """Reflow networks: list, validate and run them on their own."""


@networks.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
def list_command(as_json: bool) -> None:
    """List the networks of the configured folder and whether each is valid."""
    settings = _settings()
    rows: list[dict[str, Any]] = []
    for name in settings.names():
        spec, problems = _check(settings, name)
        rows.append(
            {
                "name": name,
                "file": str(settings.folder / f"{name}.json"),
                "valid": not problems,
                "nodes": len(spec.nodes) if spec else None,
                "input": str(spec.input) if spec else None,
                "output": _endpoint_text(spec) if spec else None,
                "description": spec.description if spec else "",
                "problems": problems,
            }
        )
    if as_json:
        click.echo(json.dumps({"folder": str(settings.folder), "networks": rows}, ensure_ascii=False))
        return
    table(
        ["NAME", "VALID", "NODES", "INPUT", "OUTPUT", "DESCRIPTION"],
        [
            [
                r["name"],
                "yes" if r["valid"] else f"no ({len(r['problems'])} problems)",
                "" if r["nodes"] is None else str(r["nodes"]),
                r["input"] or "",
                r["output"] or "",
                r["description"],
            ]
            for r in rows
        ],
    )


@networks.command("validate")
@click.argument("name", required=False)
def validate_command(name: str | None) -> None:
    """Check network NAME (default: every network); print each problem as FILE:POINTER: message."""
    settings = _settings()
    names = [name] if name is not None else settings.names()
    if name is not None:
        settings.path_of(name)  # an unknown name is a usage error, not a problem of a file
    bad = 0
    for each in names:
        _, problems = _check(settings, each)
        for line in problems:
            click.echo(line)
        bad += bool(problems)
    if bad:
        sys.exit(1)
    click.echo(f"valid: {len(names)} network{'s' if len(names) != 1 else ''} in {settings.folder}")


@networks.command("run")
@click.argument("name")
@input_options("The network's input")
@click.option(
    "--timeout", type=float, help="Kill the run after this many seconds ([reflow] timeout_seconds)."
)
def run_command(name: str, input_text: str | None, input_file: Path | None, timeout: float | None) -> None:
    """Run network NAME in a child process, as a Task state would, and print its result as JSON."""
    input_value = read_input(input_text, input_file)
    if timeout is not None and timeout <= 0:
        raise UsageError("--timeout must be a positive number of seconds")
    settings = _settings()
    settings.path_of(name)  # an unknown network is a usage error listing the networks
    spec, problems = _check(settings, name)
    if spec is None:
        raise UsageError("invalid network:\n" + "\n".join(problems))
    try:
        output = run_isolated(spec, input_value, settings, timeout=timeout or settings.timeout_seconds)
    except TaskError as exc:
        click.echo(
            json.dumps({"status": "FAILED", "error": exc.error, "cause": exc.cause}, ensure_ascii=False)
        )
        sys.exit(1)
    click.echo(json.dumps({"status": "SUCCEEDED", "output": output}, ensure_ascii=False))
