"""SQLite: events indexed by a short stream key (the position of the stream's first event).

Revision ID: 0004
Revises: 0003
Create Date: 2025-01-04
"""

from __future__ import annotations

from orchestrator.store.migrate import run_sql_file

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Run the ``upgrade:`` statements of ``0004_sqlite_event_indexes.<dialect>.sql``."""
    run_sql_file(__file__, "upgrade")


def downgrade() -> None:
    """Run the ``downgrade:`` statements of ``0004_sqlite_event_indexes.<dialect>.sql``."""
    run_sql_file(__file__, "downgrade")
