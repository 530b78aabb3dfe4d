"""Request and response bodies of the REST API (pydantic), the only shapes that leave the service.

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
    ValidationInfo,
    computed_field,
    field_validator,
    model_validator,
)

from backend.models import Status
from backend.progress import ProgressDetail
from backend.schemas_graph import GroupOut
from prunespec.costs import format_count
from prunespec.spec import ExperimentSpec
from prunespec.stops import StopReason

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


def _unique(tags: list[str]) -> list[str]:
    return list(dict.fromkeys(tags))


#: A project named by its name or its id.
ProjectRef = Annotated[int, Field(ge=1, le=MAX_ID)] | Owner
#: An experiment's tags: trimmed, none blank, at most :data:`MAX_TAGS` (duplicates dropped, order kept).
Tags = Annotated[list[Tag], Field(max_length=MAX_TAGS), AfterValidator(_unique)]
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


# --------------------------------------------------------------------------------------------- benchmarks


def benchmarks_path(experiment_id: int) -> str:
    """The API path of one experiment's TFLite benchmarks."""
    return f"{experiment_path(experiment_id)}/benchmarks"


class BenchmarkRequest(RequestBody):
    """Run an experiment's TFLite benchmarks again (formats, runs and threads come from its spec).

    Attributes:
        cycles: which cycles' models: ``first_last`` (cycle 0 and the final cycle) or ``every``.
            Default None: the spec's ``benchmark.cycles``, or ``first_last`` when that is ``none``.
    """

    cycles: Literal["first_last", "every"] | None = None


class BenchmarkQueued(Schema):
    """An experiment whose benchmarks were handed to the workers; follow them at ``url``."""

    experiment_id: int
    cycles: Literal["first_last", "every"]
    status: Literal["queued"] = "queued"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def url(self) -> str:
        return benchmarks_path(self.experiment_id)


class TFLiteBenchmarkOut(Schema):
    """One cycle's model converted to one TFLite format, checked and timed.

    Attributes:
        status: ``ok``, or ``failed`` with the reason in ``error`` (e.g. the converter's).
        model_bytes: size of the ``.tflite`` file; download it from ``artifact_url``.
        runs, threads: timed batch-1 invocations and interpreter threads.
        latency_*_us: of one invocation, from the run that timed every model of the experiment together.
        keras_loss, keras_metric, tflite_loss, tflite_metric: the Keras model and the converted one on
            the same test examples (their difference is the conversion's fidelity).
        total_bits: representation bits of the parameters in this format (``worker.engine.bits``'s
            nominal convention).
    """

    id: int
    cycle_index: int
    format: str
    status: str
    error: str | None
    model_bytes: int | None
    threads: int
    runs: int
    latency_median_us: float | None
    latency_p90_us: float | None
    latency_mean_us: float | None
    latency_min_us: float | None
    latency_std_us: float | None
    keras_loss: float | None
    keras_metric: float | None
    tflite_loss: float | None
    tflite_metric: float | None
    total_bits: int | None
    artifact_id: int | None
    created_at: UtcDatetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def artifact_url(self) -> str | None:
        return None if self.artifact_id is None else artifact_path(self.artifact_id)


class CycleBenchmarkOut(Schema):
    """One benchmarked cycle against the baseline cycle: what pruning promised and what it delivered.

    Attributes:
        flops_reduction: baseline FLOPs / this cycle's FLOPs (2.0: half the FLOPs).
        speedup: per format, baseline median latency / this cycle's (2.0: twice as fast); None where
            either model failed.
        latency_median_us: per format, this cycle's median latency.
        bits: per format, representation bits; ``bits_per_param`` the same over the cycle's parameters.
    """

    cycle_index: int
    accepted: bool
    params: int
    flops: int
    flops_reduction: float | None
    speedup: dict[str, float | None]
    latency_median_us: dict[str, float | None]
    bits: dict[str, int | None]
    bits_per_param: dict[str, float | None]


class ExperimentBenchmarks(Schema):
    """An experiment's TFLite benchmarks: every row, and per cycle FLOPs reduction against speed-up.

    Attributes:
        benchmarking: a worker is converting and timing the models now.
        baseline_cycle: the cycle speed-ups and FLOPs reductions are relative to (cycle 0 when it was
            benchmarked, else the first benchmarked cycle); None before any benchmark.
        latency_speedup: the final cycle's float32 model against cycle 0's, as the median of per-round
            ratios of the interleaved timing (None without both).
        rows: by cycle, then format.
        cycles: one entry per benchmarked cycle, ascending.
    """

    experiment_id: int
    status: Status
    benchmarking: bool
    final_cycle: int | None
    baseline_cycle: int | None
    latency_speedup: float | None
    rows: list[TFLiteBenchmarkOut]
    cycles: list[CycleBenchmarkOut]


# --------------------------------------------------------------------------------------------- crossover

#: Densities a crossover run times by default: 1 % to 100 %, denser near the low end (as the engine's).
DEFAULT_CROSSOVER_DENSITIES = (0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3, 0.5, 0.7, 1.0)
#: Most kernel weights (rows × cols) a crossover run may time.
MAX_CROSSOVER_WEIGHTS = 4_194_304
#: Most work one crossover run may ask for: rows × cols × batch × (runs + warmup) × densities × backends
#: (dense multiply-adds of every timed and untimed product; the default 2,048 × 2,048 kernel with 12
#: densities, both backends and 220 rounds is 2.2e10), so one request holds a worker for about a minute
#: at most.
MAX_CROSSOVER_WORK = 50_000_000_000
CrossoverBackend = Literal["tensorflow", "litert"]
Density = Annotated[float, Field(gt=0.0, le=1.0)]


def crossover_path(run_id: int) -> str:
    """The API path of one crossover run."""
    return f"{API_PREFIX}/crossover/{run_id}"


def _both_backends() -> list[CrossoverBackend]:
    return ["tensorflow", "litert"]


def _sorted_densities(densities: list[float]) -> list[float]:
    return sorted(set(densities))


class CrossoverCreate(RequestBody):
    """A crossover run: dense against sparse products of a ``rows`` × ``cols`` kernel across densities.

    Attributes:
        rows, cols: the kernel (a dense layer's fan-in and units), 1 to 8,192 each, at most
            4,194,304 weights.
        batch: examples per product, 1 to 1,024. Default 1.
        densities: fractions of non-zero weights in (0, 1], 1 to 24 of them (sorted, duplicates
            dropped). Default 1 % to 100 %.
        backends: ``tensorflow`` (``tf.sparse``) and/or ``litert`` (TFLite's sparse storage). Default both.
        runs, warmup: timed and untimed interleaved rounds. Default 200 and 20.
        threads: LiteRT interpreter threads. Default 1.
        block_rows: LiteRT only: non-zeros in blocks of this many consecutive inputs of one unit (4 is
            TFLite's 1×4 sparse block); must divide ``rows``. Default 1.
    """

    rows: int = Field(ge=1, le=8192)
    cols: int = Field(ge=1, le=8192)
    batch: int = Field(default=1, ge=1, le=1024)
    densities: Annotated[
        list[Density], Field(min_length=1, max_length=24), AfterValidator(_sorted_densities)
    ] = Field(default_factory=lambda: list(DEFAULT_CROSSOVER_DENSITIES))
    backends: Annotated[
        list[CrossoverBackend], Field(min_length=1, max_length=2), AfterValidator(_unique)
    ] = Field(default_factory=_both_backends)
    runs: int = Field(default=200, ge=1, le=10_000)
    warmup: int = Field(default=20, ge=0, le=1000)
    threads: int = Field(default=1, ge=1, le=64)
    block_rows: int = Field(default=1, ge=1, le=64)

    @field_validator("cols")
    @classmethod
    def _bounded_kernel(cls, cols: int, info: ValidationInfo) -> int:
        rows = info.data.get("rows")
        if rows is not None and rows * cols > MAX_CROSSOVER_WEIGHTS:
            raise ValueError(
                f"rows × cols = {rows * cols:,} weights; at most {MAX_CROSSOVER_WEIGHTS:,} are timed"
            )
        return cols

    @field_validator("block_rows")
    @classmethod
    def _block_divides_rows(cls, block_rows: int, info: ValidationInfo) -> int:
        rows = info.data.get("rows")
        if rows is not None and rows % block_rows:
            raise ValueError(f"block_rows ({block_rows}) must divide rows ({rows})")
        return block_rows

    @model_validator(mode="after")
    def _bounded_work(self) -> CrossoverCreate:
        work = self.work
        if work > MAX_CROSSOVER_WORK:
            raise ValueError(
                f"rows × cols × batch × (runs + warmup) × densities × backends = {self.rows:,} × "
                f"{self.cols:,} × {self.batch:,} × {self.runs + self.warmup:,} × {len(self.densities)} × "
                f"{len(self.backends)} = {format_count(work)}; at most {format_count(MAX_CROSSOVER_WORK)} "
                "per run: use fewer runs, densities, a smaller batch or kernel"
            )
        return self

    @property
    def work(self) -> int:
        """rows × cols × batch × (runs + warmup) × densities × backends: what the run multiplies."""
        rounds = self.runs + self.warmup
        return self.rows * self.cols * self.batch * rounds * len(self.densities) * len(self.backends)


class CrossoverCreated(Schema):
    """A crossover run that was saved and handed to the workers."""

    id: int
    status: Literal["queued"] = "queued"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def url(self) -> str:
        return crossover_path(self.id)


class DensityTimingOut(Schema):
    """Dense and sparse timing at one density (see ``worker.engine.sparse_bench.DensityTiming``)."""

    density: float
    nonzeros: int
    dense_us: float
    sparse_us: float
    speedup: float
    dense_bytes: int | None = None
    sparse_bytes: int | None = None


class CrossoverOut(Schema):
    """A crossover run: what was asked, its state, and per back end the timings and crossover density.

    Attributes:
        timings: per back end, one timing per density, ascending (empty until it succeeded).
        crossover: per back end, the highest density at which sparse was faster by more than 5 %, or
            None when it never was.
    """

    id: int
    rows: int
    cols: int
    batch: int
    backends: list[str]
    densities: list[float]
    runs: int
    warmup: int
    threads: int
    block_rows: int
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    error: str | None
    timings: dict[str, list[DensityTimingOut]]
    crossover: dict[str, float | None]
    worker: str | None
    created_at: UtcDatetime
    started_at: UtcDatetime | None
    finished_at: UtcDatetime | None
    #: the run's lease, as an experiment's: cancel asked, attempts, heartbeat, re-sends by the sweep
    cancel_requested: bool = False
    attempts: int = 0
    heartbeat_at: UtcDatetime | None = None
    requeues: int = 0
    requeued_at: UtcDatetime | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def url(self) -> str:
        return crossover_path(self.id)


# --------------------------------------------------------------------------------------------- export, import


def export_path(experiment_id: int) -> str:
    """The API path that downloads one experiment's cycles and epochs (``?format=json|csv&what=...``)."""
    return f"{experiment_path(experiment_id)}/export"


class ExportQuery(RequestBody):
    """What ``GET /api/experiments/{id}/export`` sends.

    Attributes:
        format: ``json`` (spec, summary, cycles and epochs in one document) or ``csv``. Default ``json``.
        what: the CSV's rows: ``cycles`` (one per cycle) or ``epochs`` (one per training epoch). Default
            ``cycles``; JSON holds both.
    """

    format: Literal["json", "csv"] = "json"
    what: Literal["cycles", "epochs"] = "cycles"


class ExperimentExport(Schema):
    """One experiment as a self-contained document: what ran, how it ended, every cycle and epoch.

    Attributes:
        format: the document's version, ``prunelab-export/1``.
        experiment: the summary columns (status, stop reason, final sizes and metric, ...).
        spec: the spec as stored (presets expanded, defaults filled in).
        final_cycle: the cycle whose model is the result (None before one was kept).
        cycles: every finished cycle in full; ``accepted`` False marks a rejected one.
        epochs: every training epoch, by cycle then epoch.
    """

    format: Literal["prunelab-export/1"] = "prunelab-export/1"
    experiment: ExperimentSummary
    spec: dict[str, Any]
    notes: str
    final_cycle: int | None
    cycles: list[CycleDetail]
    epochs: list[EpochOut]


#: Most cycles an imported run may hold (a spec allows at most this many ``max_cycles``).
MAX_IMPORT_CYCLES = 1000
#: Most epochs one imported cycle may hold.
MAX_IMPORT_EPOCHS = 10_000
#: Largest final model an import may carry, in bytes once decoded (the request's body cap applies too).
MAX_IMPORT_MODEL_BYTES = 512 * 1024
LayerName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Count = Annotated[int, Field(ge=0, le=10**15)]
Units = Annotated[list[Annotated[int, Field(ge=0, le=10**7)]], Field(max_length=100_000)]


class ImportedEpoch(BaseModel):
    """One epoch of a local run's cycle, as ``results.json`` holds it (extra fields are ignored)."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    cycle: int = Field(ge=0, le=MAX_IMPORT_CYCLES)
    epoch: int = Field(ge=0, le=MAX_IMPORT_EPOCHS)
    loss: float | None = None
    metric: float | None = None
    val_loss: float | None = None
    val_metric: float | None = None
    seconds: float = Field(default=0.0, ge=0)


class ImportedCycle(BaseModel):
    """One cycle of a local run, as ``results.json`` holds it (``stats`` and ``layer_costs`` are ignored:
    the server computes the costs from the widths; per-unit statistics are not in the file)."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    index: int = Field(ge=0, le=MAX_IMPORT_CYCLES)
    widths: Annotated[dict[LayerName, Count], Field(max_length=10_000)]
    widths_after: Annotated[dict[LayerName, Count], Field(max_length=10_000)]
    params: Count
    flops: Count
    metric_name: str = Field(min_length=1, max_length=32)
    loss: float | None = None
    metric: float | None = None
    val_loss: float | None = None
    val_metric: float | None = None
    removed: Annotated[dict[LayerName, Units], Field(max_length=10_000)] = Field(default_factory=dict)
    folded: Annotated[dict[LayerName, Units], Field(max_length=10_000)] = Field(default_factory=dict)
    merged: Annotated[dict[LayerName, Units], Field(max_length=10_000)] = Field(default_factory=dict)
    epochs: Annotated[list[ImportedEpoch], Field(max_length=MAX_IMPORT_EPOCHS)] = Field(default_factory=list)
    train_seconds: float = Field(default=0.0, ge=0)
    stats_seconds: float = Field(default=0.0, ge=0)
    prune_seconds: float = Field(default=0.0, ge=0)
    accepted: bool = True
    #: default: the cycle before (files written before ``pruning.backoff`` existed)
    pruned_from: int | None = Field(default=None, ge=0, le=MAX_IMPORT_CYCLES)


class RunResults(BaseModel):
    """A ``prunelab run`` directory's ``results.json`` (``worker.local_run.results_document``)."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    spec: ExperimentSpec
    versions: Annotated[
        dict[Annotated[str, Field(max_length=32)], Annotated[str, Field(max_length=64)]], Field(max_length=20)
    ] = Field(default_factory=dict)
    #: one of the engine's reasons: a run stopped for any other reason was not written by ``prunelab run``
    stop_reason: StopReason
    final_index: int | None = Field(ge=0, le=MAX_IMPORT_CYCLES)
    cycles: Annotated[list[ImportedCycle], Field(max_length=MAX_IMPORT_CYCLES)]


class ExperimentImport(RequestBody):
    """A local run to add to the history (``prunelab push RUN_DIR``).

    Attributes:
        results: the run's ``results.json``.
        owner, tags, notes: as for a new experiment.
        final_model: the run's ``final.keras``, base64, at most 512 KiB decoded; omitted: the numbers only.
    """

    results: RunResults
    owner: Owner = "anonymous"
    tags: Annotated[list[Tag], Field(max_length=20), AfterValidator(_unique)] = Field(default_factory=list)
    notes: str = Field(default="", max_length=20_000)
    final_model: str | None = Field(default=None, max_length=(MAX_IMPORT_MODEL_BYTES * 4) // 3 + 4)
