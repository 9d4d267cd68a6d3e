"""Workers: the registry of live worker processes, and a notification when work becomes claimable.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02
"""

from __future__ import annotations

from orchestrator.store.migrate import run_sql_file

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Run the ``upgrade:`` statements of ``0002_workers.<dialect>.sql``."""
    run_sql_file(__file__, "upgrade")


def downgrade() -> None:
    """Run the ``downgrade:`` statements of ``0002_workers.<dialect>.sql``."""
    run_sql_file(__file__, "downgrade")
