"""sessions.turns (the chat fence) and an index of ended sessions (the retention job)

Expand only: old pods neither read nor write `turns` (its default keeps their inserts valid),
so they keep working while new ones roll out.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ENDED = sa.text("ended_at IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("turns", sa.Integer(), server_default="0", nullable=False))
    op.create_index(
        "ix_sessions_ended_at",
        "sessions",
        ["ended_at"],
        postgresql_where=_ENDED,
        sqlite_where=_ENDED,
    )


def downgrade() -> None:
    op.drop_index("ix_sessions_ended_at", table_name="sessions")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("turns")
