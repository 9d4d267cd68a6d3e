"""The ``orchestrator`` command group; each subcommand lives in a module of its own."""

from __future__ import annotations

import sys

import click

from orchestrator.cli.asl import run_local_command, validate_command
from orchestrator.cli.db import db
from orchestrator.cli.durable import COMMANDS as DURABLE_COMMANDS
from orchestrator.cli.durable import CONFIG_KEY
from orchestrator.cli.networks import networks
from orchestrator.cli.serve import serve_command
from orchestrator.cli.tokens import tokens_group
from orchestrator.cli.worker import COMMANDS as WORKER_COMMANDS
from orchestrator.errors import UsageError
from orchestrator.logs import configure_logging


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--log-level", default="warning", show_default=True, help="Log level for messages on stderr.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="ORCHESTRATOR_CONFIG",
    help="Configuration file (env ORCHESTRATOR_CONFIG; default ./orchestrator.toml when present).",
)
@click.pass_context
def cli(context: click.Context, log_level: str, config_path: str | None) -> None:
    """Event-sourced workflow orchestrator speaking Amazon States Language."""
    configure_logging(log_level)
    context.meta[CONFIG_KEY] = config_path


cli.add_command(validate_command)
cli.add_command(run_local_command)
cli.add_command(db)
for _command in DURABLE_COMMANDS:
    cli.add_command(_command)
cli.add_command(serve_command)
cli.add_command(tokens_group)
cli.add_command(networks)
for _command in WORKER_COMMANDS:
    cli.add_command(_command)


def main() -> None:
    """Entry point: run the group; ``UsageError`` becomes a message and exit 2, never a traceback."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except UsageError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
