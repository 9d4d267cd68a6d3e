"""What a command takes from its caller besides its arguments: a JSON input and who the caller is.

Every command that takes a JSON input (``start``, ``run-local``, ``networks run``) declares it with
:func:`input_options` (``--input TEXT`` / ``--input-file FILE``) and reads it with :func:`read_input`,
so they all refuse the same mistakes with the same messages (a ``UsageError``, exit 2):

- both options given: ``give either --input or --input-file, not both``;
- a file that cannot be read: ``cannot read input file FILE: No such file or directory``;
- invalid JSON, with where: ``--input: invalid JSON at line 1 column 2: ...`` or
  ``input file FILE: invalid JSON at line 2 column 1: ...``.

:func:`actor` names who made a change (``ORCHESTRATOR_ACTOR``, else ``USER``) for the events that
record it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from orchestrator.engine.local import load_json_file, parse_json
from orchestrator.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])


def input_options(what: str) -> Callable[[F], F]:
    """``--input`` (parameter ``input_text``) and ``--input-file`` (``input_file``) for ``what``
    (e.g. "Execution input"); read them with :func:`read_input`."""

    def decorate(command: F) -> F:
        command = click.option(
            "--input-file", type=click.Path(dir_okay=False, path_type=Path), help=f"{what} from a file."
        )(command)
        return click.option("--input", "input_text", help=f"{what} as JSON text (default {{}}).")(command)

    return decorate


def read_input(input_text: str | None, input_file: Path | None) -> Any:
    """The value of ``--input`` or ``--input-file`` (``{}`` when neither is given).

    Raises :class:`UsageError` when both are given, the file cannot be read, or the JSON is invalid
    (saying which option or file, and the line and column).
    """
    if input_text is not None and input_file is not None:
        raise UsageError("give either --input or --input-file, not both")
    if input_text is not None:
        return parse_json(input_text, "--input")
    if input_file is not None:
        return load_json_file(str(input_file), "input file")
    return {}


def actor() -> str:
    """Who runs the command, as recorded in the events it writes."""
    return os.environ.get("ORCHESTRATOR_ACTOR") or os.environ.get("USER") or "unknown"
