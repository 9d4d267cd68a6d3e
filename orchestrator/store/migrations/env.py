"""Alembic environment: runs migrations on the connection :mod:`orchestrator.store.migrate` passes.

The caller holds the connection inside a transaction and a schema lock (SQLite ``BEGIN
IMMEDIATE``, a PostgreSQL advisory lock), so concurrent upgraders run one after the other and a
failed upgrade leaves nothing behind.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError(
        "run migrations through orchestrator.store.migrate (`orchestrator db upgrade`), "
        "which provides the locked connection"
    )
context.configure(connection=connection, target_metadata=None, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
