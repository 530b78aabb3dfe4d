"""Initial schema: experiments, cycles, layer statistics, epochs, artifacts, TFLite benchmarks.

Revision ID: 0001
Revises:
Create Date: 2026-11-22 08:08:15+00:00

Every table of ``backend.models`` as first written. Constraint and index names follow the naming
convention on ``Base.metadata`` (``pk_<table>``, ``fk_<table>_<column>_<referred table>``,
``uq_<table>_<columns>``, ``ix_<table>_<column>``) and are spelled out here with ``op.f`` so that
they stay fixed even if the convention changes. Timestamps are timezone-aware; ``JSON`` is the
generic type (``json`` on PostgreSQL, text on SQLite); per-unit arrays are binary blobs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Children before parents: the order ``downgrade`` drops them in (``upgrade`` creates them reversed).
TABLES = ("tflite_benchmarks", "artifacts", "epochs", "layer_stats", "cycles", "experiments")


def _id() -> sa.Column[int]:
    """The integer primary-key column every table has."""
    return sa.Column("id", sa.Integer(), nullable=False)


def _created_at() -> sa.Column[datetime]:
    """The timezone-aware ``created_at`` column (filled by the models' ``utcnow`` default)."""
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False)


def _experiment_fk(table: str) -> tuple[sa.Column[int], sa.ForeignKeyConstraint]:
    """The ``experiment_id`` column of a child table, and its cascading foreign key."""
    return (
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f(f"fk_{table}_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
    )


def upgrade() -> None:
    """Create every table with its keys and indexes."""
    op.create_table(
        "experiments",
        _id(),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        # live progress
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("progress_detail", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("stop_reason", sa.String(length=32), nullable=True),
        sa.Column("final_cycle", sa.Integer(), nullable=True),
        sa.Column("worker", sa.String(length=200), nullable=True),
        sa.Column("tf_version", sa.String(length=32), nullable=True),
        sa.Column("keras_version", sa.String(length=32), nullable=True),
        _created_at(),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        # summary for listings
        sa.Column("cycles_done", sa.Integer(), nullable=False),
        sa.Column("metric_name", sa.String(length=32), nullable=True),
        sa.Column("initial_params", sa.BigInteger(), nullable=True),
        sa.Column("initial_flops", sa.BigInteger(), nullable=True),
        sa.Column("final_params", sa.BigInteger(), nullable=True),
        sa.Column("final_flops", sa.BigInteger(), nullable=True),
        sa.Column("final_widths", sa.JSON(), nullable=True),
        sa.Column("final_metric", sa.Float(), nullable=True),
        sa.Column("best_metric", sa.Float(), nullable=True),
        sa.Column("latency_speedup", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiments")),
    )
    for column in ("name", "owner", "status", "created_at"):
        op.create_index(op.f(f"ix_experiments_{column}"), "experiments", [column])
    op.create_index(op.f("ix_experiments_status_created"), "experiments", ["status", "created_at"])

    op.create_table(
        "cycles",
        _id(),
        *_experiment_fk("cycles"),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("model_spec", sa.JSON(), nullable=False),
        sa.Column("widths", sa.JSON(), nullable=False),
        sa.Column("widths_after", sa.JSON(), nullable=False),
        sa.Column("params", sa.BigInteger(), nullable=False),
        sa.Column("flops", sa.BigInteger(), nullable=False),
        sa.Column("layer_costs", sa.JSON(), nullable=False),
        sa.Column("removed", sa.JSON(), nullable=False),
        sa.Column("folded", sa.JSON(), nullable=False),
        sa.Column("merged", sa.JSON(), nullable=False),
        sa.Column("metric_name", sa.String(length=32), nullable=False),
        sa.Column("loss", sa.Float(), nullable=True),
        sa.Column("metric", sa.Float(), nullable=True),
        sa.Column("val_loss", sa.Float(), nullable=True),
        sa.Column("val_metric", sa.Float(), nullable=True),
        sa.Column("train_seconds", sa.Float(), nullable=False),
        sa.Column("stats_seconds", sa.Float(), nullable=False),
        sa.Column("prune_seconds", sa.Float(), nullable=False),
        sa.Column("accepted", sa.Boolean(), nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cycles")),
        sa.UniqueConstraint("experiment_id", "index", name=op.f("uq_cycles_experiment_id_index")),
    )

    op.create_table(
        "layer_stats",
        _id(),
        sa.Column("cycle_id", sa.Integer(), nullable=False),
        sa.Column("layer", sa.String(length=64), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("outputs", sa.BigInteger(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("histogram", sa.JSON(), nullable=False),
        sa.Column("bin_edges", sa.JSON(), nullable=False),
        # little-endian per-unit arrays (see backend.models.LayerStatsRow)
        sa.Column("active", sa.LargeBinary(), nullable=True),
        sa.Column("zeros", sa.LargeBinary(), nullable=True),
        sa.Column("mean", sa.LargeBinary(), nullable=True),
        sa.Column("variance", sa.LargeBinary(), nullable=True),
        sa.Column("minimum", sa.LargeBinary(), nullable=True),
        sa.Column("maximum", sa.LargeBinary(), nullable=True),
        sa.Column("unit_histograms", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["cycle_id"], ["cycles.id"], name=op.f("fk_layer_stats_cycle_id_cycles"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_layer_stats")),
        sa.UniqueConstraint("cycle_id", "layer", name=op.f("uq_layer_stats_cycle_id_layer")),
    )

    op.create_table(
        "epochs",
        _id(),
        *_experiment_fk("epochs"),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("loss", sa.Float(), nullable=True),
        sa.Column("metric", sa.Float(), nullable=True),
        sa.Column("val_loss", sa.Float(), nullable=True),
        sa.Column("val_metric", sa.Float(), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_epochs")),
        sa.UniqueConstraint(
            "experiment_id", "cycle", "epoch", name=op.f("uq_epochs_experiment_id_cycle_epoch")
        ),
    )

    op.create_table(
        "artifacts",
        _id(),
        *_experiment_fk("artifacts"),
        sa.Column("cycle_index", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_artifacts")),
    )
    op.create_index(
        op.f("ix_artifacts_experiment_kind"), "artifacts", ["experiment_id", "kind", "cycle_index"]
    )

    op.create_table(
        "tflite_benchmarks",
        _id(),
        *_experiment_fk("tflite_benchmarks"),
        sa.Column("cycle_index", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("model_bytes", sa.BigInteger(), nullable=True),
        sa.Column("threads", sa.Integer(), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("latency_median_us", sa.Float(), nullable=True),
        sa.Column("latency_p90_us", sa.Float(), nullable=True),
        sa.Column("latency_mean_us", sa.Float(), nullable=True),
        sa.Column("latency_min_us", sa.Float(), nullable=True),
        sa.Column("latency_std_us", sa.Float(), nullable=True),
        sa.Column("keras_loss", sa.Float(), nullable=True),
        sa.Column("keras_metric", sa.Float(), nullable=True),
        sa.Column("tflite_loss", sa.Float(), nullable=True),
        sa.Column("tflite_metric", sa.Float(), nullable=True),
        sa.Column("total_bits", sa.BigInteger(), nullable=True),
        sa.Column("artifact_id", sa.Integer(), nullable=True),
        _created_at(),
        sa.ForeignKeyConstraint(
            ["artifact_id"],
            ["artifacts.id"],
            name=op.f("fk_tflite_benchmarks_artifact_id_artifacts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tflite_benchmarks")),
        sa.UniqueConstraint(
            "experiment_id",
            "cycle_index",
            "format",
            name=op.f("uq_tflite_benchmarks_experiment_id_cycle_index_format"),
        ),
    )


def downgrade() -> None:
    """Drop every table, children first (their indexes go with them)."""
    for table in TABLES:
        op.drop_table(table)
