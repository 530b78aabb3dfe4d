"""Uploaded models and data sets, stored by content hash per project.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 10:00:00+00:00

See ``backend.models.Upload`` and ``backend.service.uploads``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create ``uploads``."""
    op.create_table(
        "uploads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("owner", sa.String(length=100), nullable=False),
        sa.Column("created_at", STAMP, nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_uploads_project_id_projects")),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_uploads_owner_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uploads")),
        sa.UniqueConstraint("project_id", "kind", "sha256", name=op.f("uq_uploads_project_id_kind_sha256")),
    )
    op.create_index(op.f("ix_uploads_kind"), "uploads", ["kind"], unique=False)
    op.create_index(op.f("ix_uploads_project_id"), "uploads", ["project_id"], unique=False)
    op.create_index(op.f("ix_uploads_owner_id"), "uploads", ["owner_id"], unique=False)


def downgrade() -> None:
    """Drop ``uploads`` (uploaded files are lost)."""
    op.drop_index(op.f("ix_uploads_owner_id"), table_name="uploads")
    op.drop_index(op.f("ix_uploads_project_id"), table_name="uploads")
    op.drop_index(op.f("ix_uploads_kind"), table_name="uploads")
    op.drop_table("uploads")
