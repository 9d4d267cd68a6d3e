"""The event store schema, by Alembic, configured in code (there is no ``alembic.ini``).

Where the migrations live, and why: in the package, at ``orchestrator/store/migrations/``
(``env.py``, ``versions/<rev>_<slug>.py`` and, beside each revision, one ``.sql`` file per dialect).
That directory is the one place revisions are authored, and it ships with the package whether it is
installed editable or from a wheel: its directories are Python packages, so setuptools picks up the
``.py`` files, and ``**/*.sql`` is package data. Locating a top-level ``migrations/`` relative to a
source checkout would break once the package is installed normally. The repository's top-level
``migrations/`` only holds a README pointing here.

Each revision runs plain SQL statements, one file per dialect (``sqlfile`` format, with
``upgrade:``/``downgrade:`` statement names), so the schema reads as what PostgreSQL and SQLite are
actually asked to do. The PostgreSQL append function is versioned by name (``orchestrator_append_v1``):
a new behaviour is a new function in a new revision, and the old one is dropped a release later.

Upgrades run inside one transaction holding an exclusive lock (SQLite ``BEGIN IMMEDIATE``, a
PostgreSQL advisory lock), so concurrent upgraders run one after the other and a failed upgrade
leaves nothing behind. :func:`upgrade` is what ``orchestrator db upgrade`` runs; the SQLite
embedded default upgrades itself when opened.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import structlog
from alembic import command, op
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

from orchestrator.store import sqlfile
from orchestrator.store.backends import ConnectionOptions
from orchestrator.store.backends.factory import open_backend
from orchestrator.store.urls import parse

log = structlog.get_logger(__name__)

#: The Alembic revision this code needs (checked against the scripts by the tests).
HEAD = "0006"

#: The Alembic script directory, shipped inside the package.
MIGRATIONS = Path(__file__).resolve().with_name("migrations")


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for our script directory, running on ``connection`` if given."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def script_head() -> str | None:
    """The head revision of the migration scripts."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    """The schema revision recorded in the database, None when it has none."""
    return MigrationContext.configure(connection).get_current_revision()


def run_upgrade(connection: Connection, revision: str = "head") -> None:
    """Upgrade the schema on ``connection``, which is in a transaction and holds the schema lock."""
    before = current_revision(connection)
    command.upgrade(alembic_config(connection), revision)
    after = current_revision(connection)
    if after != before:
        log.info("store.schema_upgraded", from_revision=before, to_revision=after)


def run_downgrade(connection: Connection, revision: str) -> None:
    """Downgrade the schema on ``connection`` (destructive: drops the tables of later revisions)."""
    command.downgrade(alembic_config(connection), revision)
    log.warning("store.schema_downgraded", to_revision=revision)


def run_sql_file(revision_file: str, direction: Literal["upgrade", "downgrade"]) -> None:
    """Run, in file order, the ``<direction>:`` statements of the revision's SQL for this dialect.

    Called by a revision script with its ``__file__``: ``versions/0001_x.py`` runs
    ``versions/0001_x.<dialect>.sql``.
    """
    bind = op.get_bind()
    path = Path(revision_file).with_suffix(f".{bind.dialect.name}.sql")
    statements = sqlfile.parse(path.read_text(encoding="utf-8"))
    for name, statement in statements.items():
        if name.startswith(f"{direction}:"):
            # text(): no parameters, and '%' (PL/pgSQL's RAISE placeholders) escaped for psycopg.
            bind.execute(text(statement))


def upgrade(url: str, revision: str = "head", options: ConnectionOptions | None = None) -> str | None:
    """Upgrade the schema of the database at ``url`` to ``revision`` (default: the latest).

    Idempotent; safe to run while other processes use the store or run it too. Returns the
    revision the schema is at afterwards. Raises
    :class:`~orchestrator.store.errors.StoreUnavailable` for a bad URL or a database that cannot be
    reached, ``alembic.util.CommandError`` for an unknown revision.
    """
    backend = open_backend(parse(url), options or ConnectionOptions())
    try:
        with backend.schema_connection() as connection:
            run_upgrade(connection, revision)
            return current_revision(connection)
    finally:
        backend.close()


def revision_of(url: str, options: ConnectionOptions | None = None) -> str | None:
    """The schema revision of the database at ``url`` (None: no schema)."""
    backend = open_backend(parse(url), options or ConnectionOptions())
    try:
        with backend.connect() as connection:
            return current_revision(connection)
    finally:
        backend.close()


def downgrade(url: str, revision: str, options: ConnectionOptions | None = None) -> str | None:
    """Downgrade the schema at ``url`` to ``revision`` (``"base"``: nothing). Destructive: for development.

    Returns the revision the schema is at afterwards.
    """
    backend = open_backend(parse(url), options or ConnectionOptions())
    try:
        with backend.schema_connection() as connection:
            run_downgrade(connection, revision)
            return current_revision(connection)
    finally:
        backend.close()
