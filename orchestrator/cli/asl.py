"""``orchestrator validate`` and ``orchestrator run-local``: the definition, without a database.

``run-local`` prints exactly one JSON object on stdout and exits 0 whenever the execution ran, whatever
its outcome; a definition, input or mock file it cannot use is a ``UsageError`` (a message on stderr,
exit 2), never a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal

import click

from orchestrator.asl.validate import validate_text
from orchestrator.cli.inputs import input_options, read_input
from orchestrator.engine.local import (
    Mocks,
    check_input_size,
    load_json_file,
    parse_json,
    read_text,
    run_local,
)
from orchestrator.errors import UsageError


@click.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--type",
    "machine_type",
    type=click.Choice(["STANDARD", "EXPRESS"]),
    default="STANDARD",
    show_default=True,
    help="The state machine type the definitions are for (EXPRESS forbids .sync and .waitForTaskToken).",
)
def validate_command(files: tuple[Path, ...], machine_type: Literal["STANDARD", "EXPRESS"]) -> None:
    """Check definitions; print every problem as FILE:POINTER: message (exit 1), or "valid" (exit 0)."""
    bad = 0
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            click.echo(f"{path}:/: cannot read file: {getattr(exc, 'strerror', None) or exc}")
            bad += 1
            continue
        problems = validate_text(text, machine_type=machine_type)
        for problem in problems:
            click.echo(problem.render(str(path)))
        refused = [] if problems else _integration_problems(path.stem, json.loads(text))
        for line in refused:
            click.echo(f"{path}:{line}")
        bad += bool(problems or refused)
    if bad:
        sys.exit(1)
    click.echo(f"valid: {len(files)} definition{'s' if len(files) != 1 else ''}")


def _integration_problems(name: str, definition: Any) -> list[str]:
    """What the configured integrations refuse in a valid definition (unknown resources, roles)."""
    from orchestrator.cli.durable import load_config  # noqa: PLC0415 - the configuration only matters here
    from orchestrator.integrations import definition_checks  # noqa: PLC0415

    return [problem for check in definition_checks(load_config()) for problem in check(name, definition)]


@click.command("run-local")
@click.argument("definition", type=click.Path(dir_okay=False, path_type=Path))
@input_options("Execution input")
@click.option(
    "--mock", "mock_file", type=click.Path(dir_okay=False, path_type=Path), help="Task mocks (JSON)."
)
@click.option("--history", is_flag=True, help="Include the history events in the output.")
@click.option("--real-time", is_flag=True, help="Really sleep through Wait states and retry back-offs.")
@click.option("--name", default="local", show_default=True, help="Execution name ($$.Execution.Name).")
def run_local_command(
    definition: Path,
    *,
    input_text: str | None,
    input_file: Path | None,
    mock_file: Path | None,
    history: bool,
    real_time: bool,
    name: str,
) -> None:
    """Run DEFINITION in memory and print one JSON object with its status and output or error.

    The input defaults to {}. Task states are answered from the --mock file.
    """
    input_value = read_input(input_text, input_file)
    check_input_size(input_value)
    text = read_text(definition, "definition")
    document = parse_json(text, f"definition {definition}")
    if not isinstance(document, dict):
        raise UsageError(f"definition {definition}: must be a JSON object, not {type(document).__name__}")
    mocks = Mocks.parse(load_json_file(str(mock_file), "mock file"), str(mock_file)) if mock_file else None
    problems = validate_text(text)
    if problems:
        lines = "\n".join(p.render(str(definition)) for p in problems)
        raise UsageError(f"invalid definition:\n{lines}")
    result = run_local(
        document,
        input_value,
        mocks=mocks,
        history=history,
        real_time=real_time,
        name=name,
        state_machine_name=definition.stem,
        validate=False,
    )
    click.echo(json.dumps(result, ensure_ascii=False))
