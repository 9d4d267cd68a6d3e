"""Alembic revisions; each runs the statements of its ``<revision>.<dialect>.sql`` files."""
