"""Rerun lineage and edit records for experiments.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 07:30:00+00:00

``experiments`` gains ``rerun_of`` (the experiment a rerun copied, set NULL when that one is deleted;
indexed, so an experiment's reruns are found without a scan) and ``edited_at``/``edited_by`` (when and
by whom its tags or notes were last edited through ``PATCH /api/experiments/{id}``). Existing rows get
NULL. See ``backend.models.Experiment``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ``rerun_of`` (foreign key, indexed), ``edited_at`` and ``edited_by`` to ``experiments``."""
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(sa.Column("rerun_of", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("edited_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("edited_by", sa.String(length=100), nullable=True))
        batch.create_foreign_key(
            "fk_experiments_rerun_of_experiments", "experiments", ["rerun_of"], ["id"], ondelete="SET NULL"
        )
        batch.create_index("ix_experiments_rerun_of", ["rerun_of"])


def downgrade() -> None:
    """Drop the columns ``upgrade`` added."""
    with op.batch_alter_table("experiments") as batch:
        batch.drop_index("ix_experiments_rerun_of")
        batch.drop_constraint("fk_experiments_rerun_of_experiments", type_="foreignkey")
        for name in ("edited_by", "edited_at", "rerun_of"):
            batch.drop_column(name)
