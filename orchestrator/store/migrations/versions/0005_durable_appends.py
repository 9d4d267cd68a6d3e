"""PostgreSQL: appends commit synchronously when the append lock is free (orchestrator_append_v3).

Revision ID: 0005
Revises: 0004
Create Date: 2025-01-05
"""

from __future__ import annotations

from orchestrator.store.migrate import run_sql_file

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Run the ``upgrade:`` statements of ``0005_durable_appends.<dialect>.sql``."""
    run_sql_file(__file__, "upgrade")


def downgrade() -> None:
    """Run the ``downgrade:`` statements of ``0005_durable_appends.<dialect>.sql``."""
    run_sql_file(__file__, "downgrade")
