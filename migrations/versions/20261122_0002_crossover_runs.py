"""Crossover runs: dense against sparse products of one kernel shape across densities.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 09:30:00+00:00

Adds the ``crossover_runs`` table (``backend.models.CrossoverRun``): the kernel shape and batch, the
back ends and densities asked for, the timing settings, the state (``queued`` → ``running`` →
``succeeded`` | ``failed``), and the results as JSON (per back end: one timing per density, and the
crossover density). No existing table changes. Names follow the naming convention on
``Base.metadata``, spelled out with ``op.f`` as in 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``crossover_runs`` and its status index."""
    op.create_table(
        "crossover_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        # the kernel is rows x cols (fan-in x units); batch examples per product
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("cols", sa.Integer(), nullable=False),
        sa.Column("batch", sa.Integer(), nullable=False),
        sa.Column("backends", sa.JSON(), nullable=False),
        sa.Column("densities", sa.JSON(), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("warmup", sa.Integer(), nullable=False),
        sa.Column("threads", sa.Integer(), nullable=False),
        sa.Column("block_rows", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        # results: per back end, the timings by density and the crossover density
        sa.Column("timings", sa.JSON(), nullable=False),
        sa.Column("crossover", sa.JSON(), nullable=False),
        sa.Column("worker", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crossover_runs")),
    )
    op.create_index(op.f("ix_crossover_runs_status"), "crossover_runs", ["status"])


def downgrade() -> None:
    """Drop ``crossover_runs`` (its index goes with it)."""
    op.drop_table("crossover_runs")
