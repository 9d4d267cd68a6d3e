"""Event store: append-only events, work items and timers, snapshots.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from orchestrator.store.migrate import run_sql_file

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Run the ``upgrade:`` statements of ``0001_event_store.<dialect>.sql``."""
    run_sql_file(__file__, "upgrade")


def downgrade() -> None:
    """Run the ``downgrade:`` statements of ``0001_event_store.<dialect>.sql``."""
    run_sql_file(__file__, "downgrade")
