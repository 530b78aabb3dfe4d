"""The cycle each cycle's model was pruned from (``pruning.backoff`` retries skip rejected cycles).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 13:00:00+00:00

See ``backend.models.Cycle.pruned_from``. Before this revision a rejected cycle always ended the run,
so every recorded cycle k > 0 was pruned from cycle k - 1: the upgrade fills that in.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the nullable ``cycles.pruned_from`` and set it to ``index - 1`` on the recorded cycles."""
    op.add_column("cycles", sa.Column("pruned_from", sa.Integer(), nullable=True))
    cycles = sa.table("cycles", sa.column("index", sa.Integer()), sa.column("pruned_from", sa.Integer()))
    op.execute(cycles.update().where(cycles.c.index > 0).values(pruned_from=cycles.c.index - 1))


def downgrade() -> None:
    """Drop ``cycles.pruned_from``."""
    with op.batch_alter_table("cycles") as batch:
        batch.drop_column("pruned_from")
