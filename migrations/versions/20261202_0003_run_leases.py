"""Run leases for crossover runs; re-queue and loss records for experiments and crossover runs.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 07:00:00+00:00

``crossover_runs`` gains the experiments' lease columns (``cancel_requested``, ``attempts``,
``heartbeat_at``), so a crossover whose worker died is taken over after the lease and failed after
``max_attempts`` instead of staying ``running`` until the task time limit. Both tables gain
``requeues``/``requeued_at`` (the sweep sent the id of a queued row nobody claimed again) and
``last_loss`` (how the last worker process ended when its pool saw it die). See
``backend.models.LeasedRun``. Existing rows get 0 / false / NULL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _requeue_and_loss_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("requeues", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("requeued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_loss", sa.String(length=200), nullable=True),
    ]


def upgrade() -> None:
    """Add the lease columns to ``crossover_runs`` and the re-queue/loss columns to both tables."""
    with op.batch_alter_table("experiments") as batch:
        for column in _requeue_and_loss_columns():
            batch.add_column(column)
    with op.batch_alter_table("crossover_runs") as batch:
        batch.add_column(
            sa.Column("cancel_requested", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")))
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        for column in _requeue_and_loss_columns():
            batch.add_column(column)


def downgrade() -> None:
    """Drop the columns ``upgrade`` added."""
    with op.batch_alter_table("crossover_runs") as batch:
        for name in ("last_loss", "requeued_at", "requeues", "heartbeat_at", "attempts", "cancel_requested"):
            batch.drop_column(name)
    with op.batch_alter_table("experiments") as batch:
        for name in ("last_loss", "requeued_at", "requeues"):
            batch.drop_column(name)
