"""``orchestrator db``: manage the event store's database schema.

Register with ``cli.add_command(db)``. The database URL comes from ``--database-url``, else the
``ORCHESTRATOR_DATABASE_URL`` environment variable, else ``sqlite:///orchestrator.db``.
"""

from __future__ import annotations

import click
from alembic.util import CommandError

from orchestrator.store import StoreError, migrate
from orchestrator.store.urls import redact

DEFAULT_DATABASE_URL = "sqlite:///orchestrator.db"

database_url_option = click.option(
    "--database-url",
    envvar="ORCHESTRATOR_DATABASE_URL",
    default=DEFAULT_DATABASE_URL,
    show_default=True,
    show_envvar=True,
    help="sqlite:///path.db or postgresql+psycopg://user:password@host:5432/db",
)


@click.group("db")
def db() -> None:
    """Manage the event store's database schema."""


@db.command("upgrade")
@database_url_option
@click.option("--revision", default="head", show_default=True, help="Alembic revision to upgrade to.")
def upgrade(database_url: str, revision: str) -> None:
    """Create or upgrade the event store schema (idempotent; safe while workers run)."""
    try:
        reached = migrate.upgrade(database_url, revision)
    except (StoreError, CommandError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"{redact(database_url)}: event store schema at revision {reached}")


@db.command("current")
@database_url_option
def current(database_url: str) -> None:
    """Show the schema revision of the database and the one this version needs."""
    try:
        revision = migrate.revision_of(database_url)
    except StoreError as error:
        raise click.ClickException(str(error)) from error
    state = (
        "up to date" if revision == migrate.HEAD else f"needs {migrate.HEAD}: run `orchestrator db upgrade`"
    )
    click.echo(f"{redact(database_url)}: event store schema at revision {revision or 'none'} ({state})")
