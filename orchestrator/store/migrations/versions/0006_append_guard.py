"""Guarded appends: commit only if another stream is at a given version (orchestrator_append_v4).

Revision ID: 0006
Revises: 0005
Create Date: 2025-01-06
"""

from __future__ import annotations

from orchestrator.store.migrate import run_sql_file

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Run the ``upgrade:`` statements of ``0006_append_guard.<dialect>.sql``."""
    run_sql_file(__file__, "upgrade")


def downgrade() -> None:
    """Run the ``downgrade:`` statements of ``0006_append_guard.<dialect>.sql``."""
    run_sql_file(__file__, "downgrade")
