"""Open the backend a database URL names."""

from __future__ import annotations

from orchestrator.store.backends import Backend, ConnectionOptions
from orchestrator.store.backends.sqlite import SQLiteBackend
from orchestrator.store.urls import DatabaseURL


def open_backend(url: DatabaseURL, options: ConnectionOptions) -> Backend:
    """The backend for ``url``, not yet connected (psycopg is imported only for PostgreSQL)."""
    if url.backend == "sqlite":
        return SQLiteBackend(url, options)
    from orchestrator.store.backends.postgresql import PostgresBackend  # noqa: PLC0415 - imports psycopg

    return PostgresBackend(url, options)
