"""Execution summaries: one row per execution, maintained by the database in the append's transaction.

Revision ID: 0003
Revises: 0002
Create Date: 2025-01-03
"""

from __future__ import annotations

from orchestrator.store.migrate import run_sql_file

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Run the ``upgrade:`` statements of ``0003_execution_summaries.<dialect>.sql``."""
    run_sql_file(__file__, "upgrade")


def downgrade() -> None:
    """Run the ``downgrade:`` statements of ``0003_execution_summaries.<dialect>.sql``."""
    run_sql_file(__file__, "downgrade")
