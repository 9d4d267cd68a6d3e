"""Alembic migrations of the event store schema (see :mod:`orchestrator.store.migrate`)."""
