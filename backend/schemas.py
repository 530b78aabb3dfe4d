"""Request and response bodies of the REST API (pydantic), the only shapes that leave the service.

This module holds the shared bases, ids and paths and the experiments' and catalog's bodies; its
siblings hold the rest: ``schemas_benchmarks`` (TFLite benchmarks, crossover runs),
``schemas_exchange`` (export, import), ``schemas_graph`` (a model's dependency graph) and
``schemas_uploads`` (uploaded models and datasets).

The service builds these from rows; routes return them; ORM rows never cross into the API. Timestamps
are always timezone-aware UTC (SQLite hands back naive values, which are UTC by construction).
Floats that are not finite (a diverged loss) serialise as ``null``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    computed_field,
    model_validator,
)

from backend.models import Status
from backend.progress import ProgressDetail
from backend.schemas_graph import GroupOut
from prunespec.spec import ExperimentSpec

API_PREFIX = "/api"
#: Largest id a request may name: the id columns are 32-bit ``integer`` (PostgreSQL refuses more).
MAX_ID = 2**31 - 1
#: An id as a client writes it: decimal digits only, no sign, space, point, exponent or leading zero.
ID_TEXT = re.compile(r"[1-9][0-9]{0,9}")
#: Most experiments one page of the listing returns.
MAX_PAGE = 500


def _as_utc(value: datetime) -> datetime:
    """Naive timestamps from SQLite are UTC; say so."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


def _ids_of(rows: Any) -> Any:
    """Experiment rows (or ids) as their ids."""
    return [getattr(row, "id", row) for row in rows] if isinstance(rows, list | tuple) else rows


_PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
Owner = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=_PRINTABLE)
]
#: Most tags one experiment carries, longest tag and longest notes (creating and editing alike).
MAX_TAGS = 20
MAX_TAG_CHARS = 40
MAX_NOTES_CHARS = 10_000
Tag = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TAG_CHARS, pattern=_PRINTABLE),
]


def parse_id(text: str) -> int | None:
    """The id ``text`` names, or ``None`` where it is not a decimal id from 1 to :data:`MAX_ID`."""
    if ID_TEXT.fullmatch(text) is None or int(text) > MAX_ID:
        return None
    return int(text)


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
    """Base of the request bodies: unknown fields are an error, numbers are finite."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# --------------------------------------------------------------------------------------------- requests


def distinct(tags: list[str]) -> list[str]:
    """The items in first-seen order, duplicates dropped."""
    return list(dict.fromkeys(tags))


#: A project named by its name or its id.
ProjectRef = Annotated[int, Field(ge=1, le=MAX_ID)] | Owner
#: An experiment's tags: trimmed, none blank, at most :data:`MAX_TAGS` (duplicates dropped, order kept).
Tags = Annotated[list[Tag], Field(max_length=MAX_TAGS), AfterValidator(distinct)]
#: An experiment's notes: free text of at most :data:`MAX_NOTES_CHARS` characters.
Notes = Annotated[str, Field(max_length=MAX_NOTES_CHARS)]


class ExperimentCreate(RequestBody):
    """A new experiment: the spec to run and who it belongs to.

    Attributes:
        spec: the experiment spec (a preset name may stand for ``model``); validated in full.
        owner: ignored: the owner is the signed-in caller (accepted so older clients keep working).
        project: the project (name or id) it goes to. Default: the caller's default project.
        tags: labels to filter the history by, at most 20 (duplicates are dropped).
        notes: free text shown beside the experiment.
    """

    spec: ExperimentSpec
    owner: Owner = "anonymous"
    project: ProjectRef | None = None
    tags: Tags = Field(default_factory=list)
    notes: Notes = ""


class ExperimentEdit(RequestBody):
    """New tags and/or notes for an experiment (``PATCH``); a field left out stays as it is.

    Attributes:
        tags: the experiment's tags in full (they replace the old ones): at most 20, each trimmed,
            1 to 40 characters; duplicates are dropped.
        notes: the experiment's notes in full, at most 10,000 characters.
    """

    tags: Tags | None = None
    notes: Notes | None = None

    @model_validator(mode="after")
    def _something(self) -> ExperimentEdit:
        if self.tags is None and self.notes is None:
            raise ValueError("send tags, notes or both")
        return self


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
        sort: the column to order by. Default ``created``. ``final_metric`` and ``best_metric`` sort
            each metric in its own good direction (see ``prunespec.metrics``), grouped by metric name.
        order: ``asc`` or ``desc``. Default ``desc``; for the metrics ``desc`` is best first. Missing
            values sort last either way.
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
    #: the validation metric of the final (kept) cycle's model, beside its params, FLOPs and widths
    final_metric: float | None
    #: the best validation metric of any accepted cycle so far (not necessarily the final model's)
    best_metric: float | None
    latency_speedup: float | None
    final_widths: dict[str, int] | None
    #: the spec's pruning.max_cycles (filled by the listing; the detail carries the whole spec)
    max_cycles: int | None = None
    #: times (and last time) the sweep re-sent its id: queued with 0 waits for a worker, else re-queued
    requeues: int = 0
    requeued_at: UtcDatetime | None = None
    #: the project it belongs to; who last edited its tags or notes, and when
    project_id: int = 1
    edited_by: str | None = None
    edited_at: UtcDatetime | None = None

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
    #: False: beyond the tolerance (rejected); the last accepted cycle stays the result
    accepted: bool
    #: the cycle whose trained model this cycle's model was pruned from: the last accepted cycle before
    #: it (index - 1 unless rejected cycles came in between, ``pruning.backoff``); None for cycle 0
    pruned_from: int | None = None
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
    progress_detail: Annotated[ProgressDetail, BeforeValidator(ProgressDetail.read)]
    cycles: list[CycleSummary]
    #: how the last lost worker process ended, e.g. "killed by signal 9 SIGKILL, often the OOM killer"
    last_loss: str | None = None
    #: the experiment this one reruns (None when it is not a rerun, or that one was deleted)
    rerun_of: int | None = None
    #: the experiments that rerun this one, oldest first
    reruns: Annotated[list[int], BeforeValidator(_ids_of)] = Field(default_factory=list)


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


class LimitCheck(Schema):
    """One of the server's limits against a spec's estimate (``backend.limits``).

    Attributes:
        name: ``parameters``, ``flops_per_example``, ``training_examples_epochs`` or ``wall_seconds``.
        field: the part of the spec that sets the value (``model`` or ``training``).
        value: the spec's estimate; None where it is not known before running (wall seconds, or an
            ``npz`` dataset's size).
        limit: the most this server allows.
        within: False when the value is over the limit (the spec would be refused).
        setting: the environment variable that sets the limit.
    """

    name: Literal["parameters", "flops_per_example", "training_examples_epochs", "wall_seconds"]
    field: str
    value: int | None
    limit: int
    within: bool
    setting: str


class SpecPreview(Schema):
    """A valid spec as it would be stored (presets expanded, defaults filled in), its model's cost, its
    model's dependency groups (every one, prunable and fixed, in model order), and its estimates against
    this server's limits (empty where the server did not check them)."""

    spec: dict[str, Any]
    cost: ModelCostOut
    groups: list[GroupOut] = Field(default_factory=list)
    limits: list[LimitCheck] = Field(default_factory=list)


class RecipeOut(Schema):
    """An example spec shipped with prunelab (``examples/``), ready to load into the New form.

    Attributes:
        name: the file's name without ``.yaml``, e.g. ``sum-best``.
        summary: the first line of the file's leading comment.
        description: the whole leading comment, as plain text.
        spec: the spec as it would be stored (presets expanded, defaults filled in).
    """

    name: str
    summary: str
    description: str
    spec: dict[str, Any]


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
