"""SQLAlchemy 2 tables: experiments, cycles, epochs, layer statistics, artifacts, TFLite benchmarks, and
the team: projects, users, memberships, API tokens, browser sessions, audit events; and uploaded models
and data sets.

Per-unit arrays (activation counts, APoZ numerators, means, variances, extremes, per-unit histograms)
are stored as little-endian binary blobs beside a JSON summary and the layer's pre-binned histogram,
so a dashboard reads a 4,096-unit layer over 50 cycles without parsing 200,000 JSON numbers. Model
files are blobs in ``artifacts``, written in the same transaction as the cycle they belong to.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, deferred, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Status(enum.StrEnum):
    """An experiment's life: queued → running → succeeded | failed | cancelled."""

    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (Status.succeeded, Status.failed, Status.cancelled)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite drops the zone; this puts it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


Timestamp = UTCDateTime()
#: The project the migration creates; it holds every experiment from before projects existed.
DEFAULT_PROJECT_ID = 1
DEFAULT_PROJECT_NAME = "default"


class LeasedRun:
    """The columns a worker runs a row under (a mixin for experiments and crossover runs).

    A worker claims the row (``attempts`` + 1) and proves it is alive through ``heartbeat_at``; a row
    whose heartbeat is older than the lease is taken over or re-queued by the sweep
    (``backend.service.runs``, ``backend.service.orphans``). ``cancel_requested`` asks its worker to
    stop. ``requeues``/``requeued_at``: how often and when the sweep last sent the id again because no
    worker claimed the queued row (a lost broker message) or its worker died. ``last_loss``: how the
    last worker process running it ended, when its pool saw it die (e.g. ``killed by signal 9 SIGKILL``).
    """

    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    heartbeat_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    requeues: Mapped[int] = mapped_column(Integer, default=0)
    requeued_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    last_loss: Mapped[str | None] = mapped_column(String(200), nullable=True)


class Experiment(LeasedRun, Base):
    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    owner: Mapped[str] = mapped_column(String(100), default="anonymous", index=True)
    tags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    notes: Mapped[str] = mapped_column(Text, default="")
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    seed: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(16), default=Status.queued.value, index=True)
    # live progress: fraction of the planned epochs done, and the latest epoch's numbers
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    progress_detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    stop_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    final_cycle: Mapped[int | None] = mapped_column(Integer, nullable=True)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    tf_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    keras_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    # summary kept up to date by the recorder so that listing never touches the cycles table
    cycles_done: Mapped[int] = mapped_column(Integer, default=0)
    metric_name: Mapped[str | None] = mapped_column(String(32), nullable=True)
    initial_params: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    initial_flops: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    final_params: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    final_flops: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    final_widths: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    final_metric: Mapped[float | None] = mapped_column(Float, nullable=True)
    best_metric: Mapped[float | None] = mapped_column(Float, nullable=True)
    latency_speedup: Mapped[float | None] = mapped_column(Float, nullable=True)
    # lineage: the experiment this one reruns (NULL once that one is deleted)
    rerun_of: Mapped[int | None] = mapped_column(
        ForeignKey("experiments.id", ondelete="SET NULL"), nullable=True, index=True
    )
    # team history (issue 15): the project it belongs to, the user who created it (``owner`` keeps the
    # name as text; rows from before sign-in have no user), and the last edit of its tags and notes
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id"), default=DEFAULT_PROJECT_ID, server_default="1", index=True
    )
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True, index=True
    )
    edited_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    edited_by: Mapped[str | None] = mapped_column(String(100), nullable=True)

    cycles: Mapped[list[Cycle]] = relationship(
        back_populates="experiment",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Cycle.index",
    )
    #: the experiments that rerun this one, oldest first (read-only; ``rerun_of`` is the link)
    reruns: Mapped[list[Experiment]] = relationship(
        foreign_keys=[rerun_of], viewonly=True, order_by="Experiment.id"
    )

    __table_args__ = (Index("ix_experiments_status_created", "status", "created_at"),)


class Cycle(Base):
    __tablename__ = "cycles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)
    model_spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    widths: Mapped[dict[str, Any]] = mapped_column(JSON)
    widths_after: Mapped[dict[str, Any]] = mapped_column(JSON)
    params: Mapped[int] = mapped_column(BigInteger)
    flops: Mapped[int] = mapped_column(BigInteger)
    layer_costs: Mapped[list[Any]] = mapped_column(JSON)
    removed: Mapped[dict[str, Any]] = mapped_column(JSON)
    folded: Mapped[dict[str, Any]] = mapped_column(JSON)
    merged: Mapped[dict[str, Any]] = mapped_column(JSON)
    metric_name: Mapped[str] = mapped_column(String(32))
    loss: Mapped[float | None] = mapped_column(Float, nullable=True)  # NaN on SQLite
    metric: Mapped[float | None] = mapped_column(Float, nullable=True)  # NaN on SQLite
    val_loss: Mapped[float | None] = mapped_column(Float, nullable=True)  # NaN on SQLite
    val_metric: Mapped[float | None] = mapped_column(Float, nullable=True)  # NaN on SQLite
    train_seconds: Mapped[float] = mapped_column(Float)
    stats_seconds: Mapped[float] = mapped_column(Float)
    prune_seconds: Mapped[float] = mapped_column(Float)
    accepted: Mapped[bool] = mapped_column(Boolean, default=True)
    #: the cycle whose trained model this cycle's model was pruned from: the last accepted cycle before
    #: it (index - 1 unless ``pruning.backoff`` retried after rejected cycles); NULL for cycle 0
    pruned_from: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)

    experiment: Mapped[Experiment] = relationship(back_populates="cycles")
    layers: Mapped[list[LayerStatsRow]] = relationship(
        back_populates="cycle", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (UniqueConstraint("experiment_id", "index"),)


class EpochRow(Base):
    """One training epoch, written as training goes (cycle rows come only when a cycle finishes)."""

    __tablename__ = "epochs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    cycle: Mapped[int] = mapped_column(Integer)
    epoch: Mapped[int] = mapped_column(Integer)
    loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    metric: Mapped[float | None] = mapped_column(Float, nullable=True)
    val_loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    val_metric: Mapped[float | None] = mapped_column(Float, nullable=True)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)

    __table_args__ = (UniqueConstraint("experiment_id", "cycle", "epoch"),)


class LayerStatsRow(Base):
    """One prunable layer's activation statistics in one cycle.

    Blobs hold little-endian arrays with one entry per unit: ``active``/``zeros`` int64,
    ``mean``/``variance``/``minimum``/``maximum`` float32, and ``unit_histograms`` int32 of shape
    (units, bins). ``histogram`` and ``bin_edges`` (JSON) are the whole layer's histogram.
    ``scores`` (float32, nullable) holds the weight criterion's per-unit score (bn_scale, weight_norm)
    the cycle selected with; NULL for layers pruned by an activation criterion and older experiments.
    """

    __tablename__ = "layer_stats"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycles.id", ondelete="CASCADE"))
    layer: Mapped[str] = mapped_column(String(64))
    units: Mapped[int] = mapped_column(Integer)
    outputs: Mapped[int] = mapped_column(BigInteger)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)
    histogram: Mapped[list[Any]] = mapped_column(JSON)
    bin_edges: Mapped[list[Any]] = mapped_column(JSON)
    active: Mapped[bytes] = deferred(mapped_column(LargeBinary))
    zeros: Mapped[bytes] = deferred(mapped_column(LargeBinary))
    mean: Mapped[bytes] = deferred(mapped_column(LargeBinary))
    variance: Mapped[bytes] = deferred(mapped_column(LargeBinary))
    minimum: Mapped[bytes] = deferred(mapped_column(LargeBinary))
    maximum: Mapped[bytes] = deferred(mapped_column(LargeBinary))
    unit_histograms: Mapped[bytes] = deferred(mapped_column(LargeBinary))
    scores: Mapped[bytes | None] = deferred(mapped_column(LargeBinary, nullable=True))

    cycle: Mapped[Cycle] = relationship(back_populates="layers")

    __table_args__ = (UniqueConstraint("cycle_id", "layer"),)


class ArtifactKind(enum.StrEnum):
    trained = "trained"  # the model a cycle trained (.keras)
    checkpoint = "checkpoint"  # the pruned model handed to the next cycle (.keras); resume starts here
    final = "final"  # the experiment's result (.keras)
    tflite = "tflite"


class Artifact(Base):
    """A stored file, downloaded by id only (never by a client-supplied path)."""

    __tablename__ = "artifacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    cycle_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    kind: Mapped[str] = mapped_column(String(16))
    filename: Mapped[str] = mapped_column(String(200))
    media_type: Mapped[str] = mapped_column(String(100), default="application/octet-stream")
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = deferred(mapped_column(LargeBinary))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)

    __table_args__ = (Index("ix_artifacts_experiment_kind", "experiment_id", "kind", "cycle_index"),)


class TFLiteBenchmark(Base):
    """One cycle's model converted to one TFLite format and timed (filled by the benchmark issue)."""

    __tablename__ = "tflite_benchmarks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    cycle_index: Mapped[int] = mapped_column(Integer)
    format: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    model_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    threads: Mapped[int] = mapped_column(Integer, default=1)
    runs: Mapped[int] = mapped_column(Integer, default=0)
    latency_median_us: Mapped[float | None] = mapped_column(Float, nullable=True)
    latency_p90_us: Mapped[float | None] = mapped_column(Float, nullable=True)
    latency_mean_us: Mapped[float | None] = mapped_column(Float, nullable=True)
    latency_min_us: Mapped[float | None] = mapped_column(Float, nullable=True)
    latency_std_us: Mapped[float | None] = mapped_column(Float, nullable=True)
    keras_loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    keras_metric: Mapped[float | None] = mapped_column(Float, nullable=True)
    tflite_loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    tflite_metric: Mapped[float | None] = mapped_column(Float, nullable=True)
    total_bits: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    artifact_id: Mapped[int | None] = mapped_column(
        ForeignKey("artifacts.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)

    __table_args__ = (UniqueConstraint("experiment_id", "cycle_index", "format"),)


class CrossoverStatus(enum.StrEnum):
    """A crossover run's life: queued → running → succeeded | failed | cancelled (values as ``Status``)."""

    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (CrossoverStatus.succeeded, CrossoverStatus.failed, CrossoverStatus.cancelled)


class CrossoverRun(LeasedRun, Base):
    """Dense against sparse products of one ``rows`` × ``cols`` kernel across densities (connection pruning).

    ``timings`` maps each back end (``tensorflow``, ``litert``) to one entry per density, ascending:
    ``density``, ``nonzeros``, ``dense_us``, ``sparse_us``, ``speedup`` (median per-round dense/sparse)
    and, for LiteRT, ``dense_bytes``/``sparse_bytes``. ``crossover`` maps each back end to the highest
    density at which the sparse product was still faster, or null when it never was. It runs under a
    lease like an experiment (:class:`LeasedRun`).
    """

    __tablename__ = "crossover_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rows: Mapped[int] = mapped_column(Integer)
    cols: Mapped[int] = mapped_column(Integer)
    batch: Mapped[int] = mapped_column(Integer)
    backends: Mapped[list[Any]] = mapped_column(JSON)
    densities: Mapped[list[Any]] = mapped_column(JSON)
    runs: Mapped[int] = mapped_column(Integer)
    warmup: Mapped[int] = mapped_column(Integer)
    threads: Mapped[int] = mapped_column(Integer)
    block_rows: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=CrossoverStatus.queued.value, index=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    timings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    crossover: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)


# --------------------------------------------------------------------------------------------- team


class Project(Base):
    """A shared shelf of experiments; users see the projects they are members of (admins see all)."""

    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class User(Base):
    """A person (or a script) with a role: ``admin``, ``member`` or ``viewer`` (``backend.auth.roles``)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class Membership(Base):
    """A user's role in one project."""

    __tablename__ = "memberships"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))

    __table_args__ = (UniqueConstraint("project_id", "user_id"),)


class ApiToken(Base):
    """A secret a user signs in with, kept only as its SHA-256 hash. ``kind`` ``api`` is used until revoked;
    ``signin`` (the link ``prunelab serve`` prints) is spent by its first use."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="api")
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)


class WebSession(Base):
    """A browser's signed-in session: the cookie's hash, its CSRF token and when it ends."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    session_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(Timestamp)
    ended_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)


class AuditEvent(Base):
    """Who did what, when, from which address (``backend.auth.audit``)."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, index=True)
    actor: Mapped[str | None] = mapped_column(String(100), nullable=True)
    action: Mapped[str] = mapped_column(String(32), index=True)
    target: Mapped[str] = mapped_column(String(200), default="")
    address: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


# --------------------------------------------------------------------------------------------- uploads


class UploadKind(enum.StrEnum):
    """What an upload holds: a Keras ``model`` (.keras) or a ``dataset`` (.npz, IDX files stored as .npz)."""

    model = "model"
    dataset = "dataset"


class Upload(Base):
    """A user's model or data set, stored by content hash (``backend.service.uploads``).

    ``content`` holds the bytes (a data set sent as IDX files holds the .npz made from them), ``sha256``
    their hash; one project keeps one row per kind and hash, so the same bytes uploaded again name the
    same row. ``summary`` is what the ingest subprocess read: a model's spec, costs and prunable layers,
    or a data set's shapes, dtypes and classes. Specs refer to it by id; it cannot be deleted while an
    experiment's spec does.
    """

    __tablename__ = "uploads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    name: Mapped[str] = mapped_column(String(200))
    notes: Mapped[str] = mapped_column(Text, default="")
    filename: Mapped[str] = mapped_column(String(200))
    media_type: Mapped[str] = mapped_column(String(100), default="application/octet-stream")
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = deferred(mapped_column(LargeBinary, nullable=False))
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True, index=True
    )
    owner: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)

    __table_args__ = (UniqueConstraint("project_id", "kind", "sha256"),)
