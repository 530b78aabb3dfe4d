"""Request and response bodies of the REST API (pydantic), the only shapes that leave the service.

The service builds these from rows; routes return them; ORM rows never cross into the API. Timestamps
are always timezone-aware UTC (SQLite hands back naive values, which are UTC by construction).
Floats that are not finite (a diverged loss) serialise as ``null``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, computed_field

from backend.models import Status
from backend.spec import ExperimentSpec

API_PREFIX = "/api"
#: Largest id a path accepts (ids are 64-bit at most in every supported database).
MAX_ID = 2**63 - 1
#: Most experiments one page of the listing returns.
MAX_PAGE = 500


def _as_utc(value: datetime) -> datetime:
    """Naive timestamps from SQLite are UTC; say so."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
_PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
Owner = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=_PRINTABLE)
]
Tag = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50, pattern=_PRINTABLE)
]


def experiment_path(experiment_id: int) -> str:
    """The API path of one experiment."""
    return f"{API_PREFIX}/experiments/{experiment_id}"


def artifact_path(artifact_id: int) -> str:
    """The API path that downloads one artifact."""
    return f"{API_PREFIX}/artifacts/{artifact_id}"


class Schema(BaseModel):
    """Base of the response bodies: built from attributes, immutable."""

    model_config = ConfigDict(from_attributes=True, frozen=True)


class RequestBody(BaseModel):
    """Base of the request bodies: unknown fields are an error."""

    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------------------------- requests


def _unique(tags: list[str]) -> list[str]:
    return list(dict.fromkeys(tags))


class ExperimentCreate(RequestBody):
    """A new experiment: the spec to run and who it belongs to.

    Attributes:
        spec: the experiment spec (a preset name may stand for ``model``); validated in full.
        owner: who the experiment belongs to. Default ``"anonymous"``.
        tags: labels to filter the history by, at most 20 (duplicates are dropped).
        notes: free text shown beside the experiment.
    """

    spec: ExperimentSpec
    owner: Owner = "anonymous"
    tags: Annotated[list[Tag], Field(max_length=20), AfterValidator(_unique)] = Field(default_factory=list)
    notes: str = Field(default="", max_length=20_000)


class SpecPreviewRequest(RequestBody):
    """A spec to validate and cost without creating anything."""

    spec: ExperimentSpec


SortKey = Literal[
    "created",
    "name",
    "status",
    "owner",
    "final_metric",
    "best_metric",
    "final_params",
    "final_flops",
    "cycles_done",
    "id",
]


class ExperimentQuery(RequestBody):
    """Filters, order and page of the experiment listing (query parameters).

    Attributes:
        status: keep experiments in any of these states (repeat the parameter); default all.
        tag: keep experiments carrying this tag.
        owner: keep experiments of this owner (exact match).
        q: keep experiments whose name contains this text (case-insensitive).
        sort: the column to order by. Default ``created``.
        order: ``asc`` or ``desc``. Default ``desc``; missing values sort last either way.
        limit: page size, 1 to 500. Default 50.
        offset: experiments to skip. Default 0.
    """

    status: list[Status] = Field(default_factory=list)
    tag: Tag | None = None
    owner: Owner | None = None
    q: str | None = Field(default=None, min_length=1, max_length=200)
    sort: SortKey = "created"
    order: Literal["asc", "desc"] = "desc"
    limit: int = Field(default=50, ge=1, le=MAX_PAGE)
    offset: int = Field(default=0, ge=0, le=10_000_000)


# --------------------------------------------------------------------------------------------- experiments


class ExperimentCreated(Schema):
    """An experiment that was saved and handed to the workers."""

    id: int
    status: Status

    @computed_field  # type: ignore[prop-decorator]
    @property
    def url(self) -> str:
        return experiment_path(self.id)


class ExperimentSummary(Schema):
    """One experiment as the listing shows it: the summary columns the recorder keeps current."""

    id: int
    name: str
    owner: str
    tags: list[str]
    status: Status
    cancel_requested: bool
    progress: float
    created_at: UtcDatetime
    started_at: UtcDatetime | None
    finished_at: UtcDatetime | None
    stop_reason: str | None
    cycles_done: int
    metric_name: str | None
    initial_params: int | None
    initial_flops: int | None
    final_params: int | None
    final_flops: int | None
    final_metric: float | None
    best_metric: float | None
    latency_speedup: float | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def url(self) -> str:
        return experiment_path(self.id)


class ExperimentPage(Schema):
    """One page of the listing and how many experiments match in all."""

    items: list[ExperimentSummary]
    total: int
    limit: int
    offset: int


class CycleSummary(Schema):
    """One finished cycle's headline numbers (no per-layer detail)."""

    index: int
    widths: dict[str, int]
    widths_after: dict[str, int]
    params: int
    flops: int
    metric_name: str
    loss: float | None
    metric: float | None
    val_loss: float | None
    val_metric: float | None
    accepted: bool
    created_at: UtcDatetime


class CycleDetail(CycleSummary):
    """One cycle in full: the model it trained, per-layer costs, the units it removed, timings."""

    model_spec: dict[str, Any]
    layer_costs: list[dict[str, Any]]
    removed: dict[str, list[int]]
    folded: dict[str, list[int]]
    merged: dict[str, list[int]]
    train_seconds: float
    stats_seconds: float
    prune_seconds: float


class ExperimentDetail(ExperimentSummary):
    """One experiment: its spec, state, live progress and every finished cycle's summary."""

    spec: dict[str, Any]
    notes: str
    error: str | None
    attempts: int
    worker: str | None
    tf_version: str | None
    keras_version: str | None
    heartbeat_at: UtcDatetime | None
    final_cycle: int | None
    final_widths: dict[str, int] | None
    progress_detail: dict[str, Any]
    cycles: list[CycleSummary]


class EpochOut(Schema):
    """One training epoch of one cycle."""

    cycle: int
    epoch: int
    loss: float | None
    metric: float | None
    val_loss: float | None
    val_metric: float | None
    seconds: float
    created_at: UtcDatetime


class LayerStatsOut(Schema):
    """One prunable layer's activation statistics in one cycle, per unit (dense) or channel (conv).

    Attributes:
        outputs: values measured per unit (examples × positions).
        summary: the recorder's scalar summary (mean APoZ, dead units, ...).
        histogram, bin_edges: the whole layer's histogram of values.
        active: outputs above zero, per unit (Çallı's activation count).
        zeros: outputs exactly zero, per unit.
        apoz: average percentage of zeros per unit, ``zeros / outputs`` in [0, 1] (Hu et al.).
        unit_histograms: (units, bins) counts over ``bin_edges``; only when asked for.
    """

    layer: str
    units: int
    outputs: int
    summary: dict[str, Any]
    histogram: list[int | float]
    bin_edges: list[float]
    active: list[int]
    zeros: list[int]
    apoz: list[float]
    mean: list[float | None]
    variance: list[float | None]
    minimum: list[float | None]
    maximum: list[float | None]
    unit_histograms: list[list[int]] | None = None


class CycleLayers(Schema):
    """The activation statistics of every measured layer of one cycle."""

    experiment_id: int
    cycle: int
    layers: list[LayerStatsOut]


class ArtifactOut(Schema):
    """A stored file (model checkpoint, TFLite model); download it from ``url``."""

    id: int
    experiment_id: int
    cycle_index: int | None
    kind: str
    filename: str
    media_type: str
    size_bytes: int
    sha256: str
    created_at: UtcDatetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def url(self) -> str:
        return artifact_path(self.id)


# --------------------------------------------------------------------------------------------- catalog


class LayerCostOut(Schema):
    """Parameters and FLOPs of one layer (FLOPs for one example at inference)."""

    name: str
    type: str
    params: int
    flops: int
    output_shape: list[int]


class ModelCostOut(Schema):
    """A model's layers with their costs and the totals."""

    params: int
    flops: int
    layers: list[LayerCostOut]
    widths: dict[str, int]
    prunable_layers: list[str]


class PresetOut(Schema):
    """A named model a spec may use for ``model``."""

    name: str
    description: str
    model: dict[str, Any]
    cost: ModelCostOut


class SpecPreview(Schema):
    """A valid spec as it would be stored (presets expanded, defaults filled in) and its model's cost."""

    spec: dict[str, Any]
    cost: ModelCostOut


class DatasetOut(Schema):
    """A built-in dataset and whether this server finds its files."""

    name: str
    available: bool
    source: str | None


# --------------------------------------------------------------------------------------------- health


class HealthCheck(Schema):
    """One dependency's state."""

    ok: bool
    detail: str


class Health(Schema):
    """The service's dependencies; ``status`` is ``ok`` only when every check passed."""

    status: Literal["ok", "unavailable"]
    checks: dict[str, HealthCheck]


# --------------------------------------------------------------------------------------------- errors


class ErrorBody(Schema):
    """The body of every 4xx/5xx answer other than 422."""

    detail: str
    code: str


class ValidationIssue(Schema):
    """One invalid field: where it is (``loc``, as FastAPI reports it; ``field``, dotted within the part
    of the request) and what is wrong with it."""

    loc: list[str | int]
    field: str
    msg: str
    type: str


class ValidationErrorBody(Schema):
    """The body of a 422 answer."""

    detail: list[ValidationIssue]
    code: str = "invalid_input"
