"""Request and response bodies of the TFLite benchmarks and of the crossover runs (the shared bases and
ids: :mod:`backend.schemas`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo, computed_field, field_validator, model_validator

from backend.models import Status
from backend.schemas import (
    API_PREFIX,
    RequestBody,
    Schema,
    UtcDatetime,
    artifact_path,
    distinct,
    experiment_path,
)
from prunespec.costs import format_count

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
        list[CrossoverBackend], Field(min_length=1, max_length=2), AfterValidator(distinct)
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
