"""tasks: queued_at and lease_expires_at (expand)

The reconciler hands out again a task PostgreSQL says is queued or running but nobody works on:
queued since `queued_at` without starting, or running past `lease_expires_at` (which its worker
renews). Rolled out expand-then-contract:

- expand (this revision): two nullable columns, nothing else changes. The migration Job runs
  before the new pods, so during a rollout the previous release's API pods and workers run on
  this schema: their statements name their own columns only, leave these NULL, and keep working;
  the new code reads a NULL `queued_at` as `created_at`, and a running task with a NULL or stale
  lease as leased for TASK_RECLAIM_IDLE_SECONDS from its `started_at` (what an old worker sets).
- contract (a later release, once no pod of the previous one runs): backfill `queued_at`, make
  it NOT NULL and drop those fallbacks. Not here: it would break the old pods mid-rollout.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from agent_service.storage.tables import UTCDateTime
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable without a default: a catalog-only change on PostgreSQL (no table rewrite, no long
    # lock), so it is safe while the previous release serves.
    op.add_column("tasks", sa.Column("queued_at", UTCDateTime()))
    op.add_column("tasks", sa.Column("lease_expires_at", UTCDateTime()))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("lease_expires_at")
        batch.drop_column("queued_at")
