"""Per-unit weight scores (bn_scale, weight_norm) of each cycle's layers.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 11:30:00+00:00

See ``backend.models.LayerStatsRow.scores``: NULL for layers pruned by an activation criterion and for
experiments recorded before this revision.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the nullable ``layer_stats.scores``."""
    op.add_column("layer_stats", sa.Column("scores", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    """Drop ``layer_stats.scores`` (recorded weight scores are lost)."""
    with op.batch_alter_table("layer_stats") as batch:
        batch.drop_column("scores")
