"""An experiment's TFLite benchmarks in the database: which cycles, their stored rows, and reading them.

The worker (``worker.experiment_benchmarks``) converts and times the models; everything it reads and
writes goes through here, in the caller's session (nothing here commits). One benchmark run times
every chosen model together, so the rows of an experiment always come from one run: recording a run
replaces every earlier row and ``.tflite`` artifact of the experiment, and their ratios hold.

Writes during an experiment's own run are conditional on the worker's lease (``backend.service.runs``)
and go into the same transaction as its finish; a benchmark run asked for later (``POST
.../benchmarks``) writes only while the experiment is still ``succeeded``. No TensorFlow here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from backend.models import Artifact, ArtifactKind, Cycle, Experiment, Status, TFLiteBenchmark, utcnow
from backend.progress import ProgressDetail, Stage
from backend.schemas_benchmarks import (
    BenchmarkQueued,
    BenchmarkRequest,
    CycleBenchmarkOut,
    ExperimentBenchmarks,
    TFLiteBenchmarkOut,
)
from backend.service.errors import Conflict, NotFound, QueueUnavailable
from backend.service.ports import TaskQueue
from backend.service.runs import Lease, last_accepted, rowcount, touch

#: The Celery task that benchmarks a finished experiment; arguments: the id and the cycles choice.
BENCHMARK_TASK = "prunelab.benchmark_experiment"
#: What a stored ``.tflite`` file is.
TFLITE_MEDIA_TYPE = "application/x-tflite"
#: A benchmark row's states.
OK, FAILED = "ok", "failed"

CycleChoice = Literal["none", "first_last", "every"]


@dataclass(frozen=True)
class BenchmarkRecord:
    """One cycle's model in one TFLite format, as the worker measured it (plain values, no TF).

    Attributes:
        cycle_index, format: what was converted.
        status: ``ok``, or ``failed`` with ``error`` saying why (the converter's reason).
        tflite: the flatbuffer, stored as a ``tflite`` artifact; None when conversion failed.
        threads, runs: interpreter threads and timed invocations.
        latency_median_us .. latency_std_us: one invocation, µs.
        keras_loss .. tflite_metric: fidelity on the same test examples.
        total_bits: representation bits of the parameters in this format.
    """

    cycle_index: int
    format: str
    status: str = OK
    error: str | None = None
    tflite: bytes | None = None
    threads: int = 1
    runs: int = 0
    latency_median_us: float | None = None
    latency_p90_us: float | None = None
    latency_mean_us: float | None = None
    latency_min_us: float | None = None
    latency_std_us: float | None = None
    keras_loss: float | None = None
    keras_metric: float | None = None
    tflite_loss: float | None = None
    tflite_metric: float | None = None
    total_bits: int | None = None


#: The fields of a :class:`BenchmarkRecord` stored as they are (the flatbuffer becomes an artifact).
STORED_FIELDS = tuple(name for name in BenchmarkRecord.__dataclass_fields__ if name != "tflite")


@dataclass(frozen=True)
class TrainedCycle:
    """A recorded cycle's model, as the worker needs it to benchmark.

    Attributes:
        index: the cycle.
        model_spec: the architecture it trained (``ModelSpec`` as JSON).
        trained: the ``.keras`` bytes of the model it trained.
    """

    index: int
    model_spec: dict[str, Any]
    trained: bytes


# --------------------------------------------------------------------------------------------- which cycles


def choose_cycles(choice: CycleChoice, recorded: Sequence[int], final: int | None) -> list[int]:
    """The cycles a benchmark covers.

    Args:
        choice: ``none``, ``first_last`` (cycle 0 and the final cycle) or ``every`` (every recorded one).
        recorded: indices of the recorded cycles.
        final: the cycle whose model is the result (None: the newest recorded).

    Returns:
        Ascending indices; empty for ``none`` or when nothing is recorded.
    """
    present = sorted(set(recorded))
    if choice == "none" or not present:
        return []
    if choice == "every":
        return present
    last = final if final is not None and final in present else present[-1]
    return sorted({present[0], last})


def plan(
    session: Session, experiment_id: int, choice: CycleChoice, final: int | None = None
) -> tuple[list[int], int | None]:
    """The recorded cycles ``choice`` names for an experiment, and its final cycle.

    Args:
        session: an open session.
        experiment_id: the experiment.
        choice: as :func:`choose_cycles`.
        final: the final cycle. Default: the experiment's ``final_cycle``, else its newest accepted one.

    Returns:
        ``(cycles, final)``: ascending indices, and the final cycle (None when nothing was accepted).
    """
    recorded = session.scalars(select(Cycle.index).where(Cycle.experiment_id == experiment_id)).all()
    if final is None:
        final = session.scalar(select(Experiment.final_cycle).where(Experiment.id == experiment_id))
    if final is None:
        final = last_accepted(session, experiment_id)
    return choose_cycles(choice, recorded, final), final


def trained_cycles(session: Session, experiment_id: int, indices: Sequence[int]) -> list[TrainedCycle]:
    """The trained models of the given cycles (cycles without a stored model are left out)."""
    rows = session.execute(
        select(Cycle.index, Cycle.model_spec, Artifact.content)
        .join(
            Artifact,
            (Artifact.experiment_id == Cycle.experiment_id)
            & (Artifact.cycle_index == Cycle.index)
            & (Artifact.kind == ArtifactKind.trained.value),
        )
        .where(Cycle.experiment_id == experiment_id, Cycle.index.in_(list(indices)))
        .order_by(Cycle.index)
    ).all()
    return [TrainedCycle(int(index), dict(spec), bytes(content)) for index, spec, content in rows]


# --------------------------------------------------------------------------------------------- writes


def _detail(session: Session, experiment_id: int) -> ProgressDetail:
    return ProgressDetail.read(
        session.scalar(select(Experiment.progress_detail).where(Experiment.id == experiment_id))
    )


def mark_benchmarking(
    session: Session, experiment_id: int, cycles: Sequence[int], *, lease: Lease | None = None
) -> bool:
    """Say in the live progress that the models are being converted and timed.

    Args:
        session: the caller's session.
        experiment_id: the experiment.
        cycles: the cycles being benchmarked (shown beside the stage).
        lease: the running worker's lease; None for a finished (``succeeded``) experiment.

    Returns:
        True when marked; False when the experiment is no longer ``succeeded`` (without a lease).

    Raises:
        LeaseLost: with a lease, the worker no longer owns the experiment.
    """
    detail = _detail(session, experiment_id).benchmarking(cycles).stored()
    if lease is not None:
        touch(session, lease, utcnow(), progress_detail=detail)
        return True
    result = session.execute(
        update(Experiment)
        .where(Experiment.id == experiment_id, Experiment.status == Status.succeeded.value)
        .values(progress_detail=detail)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


def end_stage(session: Session, experiment_id: int) -> None:
    """Drop the ``benchmarking`` stage from a succeeded experiment's live progress (a benchmark run that
    ended without results)."""
    session.execute(
        update(Experiment)
        .where(Experiment.id == experiment_id, Experiment.status == Status.succeeded.value)
        .values(progress_detail=_detail(session, experiment_id).without_stage().stored())
        .execution_options(synchronize_session=False)
    )


def _artifact(experiment_id: int, record: BenchmarkRecord, content: bytes) -> Artifact:
    return Artifact(
        experiment_id=experiment_id,
        cycle_index=record.cycle_index,
        kind=ArtifactKind.tflite.value,
        filename=f"cycle-{record.cycle_index}-{record.format}.tflite",
        media_type=TFLITE_MEDIA_TYPE,
        size_bytes=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        content=content,
    )


def record_benchmarks(
    session: Session,
    experiment_id: int,
    records: Sequence[BenchmarkRecord],
    latency_speedup: float | None,
    *,
    lease: Lease | None = None,
    now: datetime | None = None,
) -> bool:
    """Replace the experiment's benchmarks with one run's rows and ``.tflite`` files.

    The experiment's row is updated first, so concurrent recordings of one experiment take turns (its
    row lock) and the later one replaces the earlier one whole.

    Args:
        session: the caller's session (the worker finishes the experiment in the same transaction).
        experiment_id: the experiment.
        records: one per cycle and format.
        latency_speedup: the final cycle's float32 speed-up over cycle 0's (None without both).
        lease: the running worker's lease; None for a finished (``succeeded``) experiment.
        now: the current time. Default now.

    Returns:
        True when stored; False when (without a lease) the experiment is no longer ``succeeded``.

    Raises:
        LeaseLost: with a lease, the worker no longer owns the experiment (nothing is written).
    """
    now = now or utcnow()
    values = {
        "latency_speedup": latency_speedup,
        "progress_detail": _detail(session, experiment_id).without_stage().stored(),
    }
    if lease is not None:
        touch(session, lease, now, **values)
    else:
        result = session.execute(
            update(Experiment)
            .where(Experiment.id == experiment_id, Experiment.status == Status.succeeded.value)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if rowcount(result) != 1:
            return False
    for statement in (
        delete(TFLiteBenchmark).where(TFLiteBenchmark.experiment_id == experiment_id),
        delete(Artifact).where(
            Artifact.experiment_id == experiment_id, Artifact.kind == ArtifactKind.tflite.value
        ),
    ):
        session.execute(statement.execution_options(synchronize_session=False))
    for record in records:
        artifact = None if record.tflite is None else _artifact(experiment_id, record, record.tflite)
        if artifact is not None:
            session.add(artifact)
            session.flush()
        columns = {name: getattr(record, name) for name in STORED_FIELDS}
        session.add(
            TFLiteBenchmark(
                experiment_id=experiment_id,
                model_bytes=None if record.tflite is None else len(record.tflite),
                artifact_id=None if artifact is None else artifact.id,
                created_at=now,
                **columns,
            )
        )
    session.flush()
    return True


# --------------------------------------------------------------------------------------------- requests


def request_benchmarks(
    session: Session, queue: TaskQueue, experiment_id: int, request: BenchmarkRequest
) -> BenchmarkQueued:
    """Hand a succeeded experiment to the workers to convert and time its cycles' models again.

    Args:
        session: an open session (nothing is written).
        queue: sends ``BENCHMARK_TASK`` with the id and the cycles choice.
        experiment_id: the experiment.
        request: which cycles (default: the spec's choice, ``first_last`` when it says ``none``).

    Returns:
        What was queued.

    Raises:
        NotFound: no such experiment.
        Conflict: the experiment has not succeeded (it has no final set of trained models).
        QueueUnavailable: the queue refused the task.
    """
    row = session.execute(
        select(Experiment.status, Experiment.spec).where(Experiment.id == experiment_id)
    ).first()
    if row is None:
        raise NotFound("experiment", experiment_id)
    if row.status != Status.succeeded.value:
        raise Conflict(
            f"experiment {experiment_id} is {row.status}; only a succeeded experiment can be benchmarked"
        )
    spec_choice = (row.spec.get("benchmark") or {}).get("cycles", "first_last")
    cycles = request.cycles or ("every" if spec_choice == "every" else "first_last")
    try:
        queue.send(BENCHMARK_TASK, experiment_id, cycles)
    except Exception as exc:
        raise QueueUnavailable(f"experiment {experiment_id}'s benchmarks could not be queued: {exc}") from exc
    return BenchmarkQueued(experiment_id=experiment_id, cycles=cycles)


# --------------------------------------------------------------------------------------------- reading


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return float(numerator) / float(denominator)


def compare_cycles(
    cycles: Sequence[Any], rows: Sequence[TFLiteBenchmarkOut]
) -> tuple[int | None, list[CycleBenchmarkOut]]:
    """Per benchmarked cycle: FLOPs reduction and latency speed-up against the baseline cycle, and bits.

    Args:
        cycles: the experiment's cycles (``index``, ``accepted``, ``params``, ``flops``), any order.
        rows: its benchmark rows.

    Returns:
        The baseline cycle (0 when benchmarked, else the first benchmarked one; None without rows) and
        one entry per benchmarked cycle that is recorded, ascending.
    """
    by_cycle: dict[int, dict[str, TFLiteBenchmarkOut]] = {}
    for row in rows:
        by_cycle.setdefault(row.cycle_index, {})[row.format] = row
    recorded = {int(cycle.index): cycle for cycle in cycles}
    benchmarked = sorted(index for index in by_cycle if index in recorded)
    if not benchmarked:
        return None, []
    baseline = 0 if 0 in benchmarked else benchmarked[0]
    base_cycle, base_rows = recorded[baseline], by_cycle[baseline]
    out: list[CycleBenchmarkOut] = []
    for index in benchmarked:
        cycle, formats = recorded[index], by_cycle[index]
        medians = {fmt: (row.latency_median_us if row.status == OK else None) for fmt, row in formats.items()}
        speedup: dict[str, float | None] = {}
        for fmt, median in medians.items():
            base = base_rows.get(fmt)
            speedup[fmt] = _ratio(base.latency_median_us if base and base.status == OK else None, median)
        out.append(
            CycleBenchmarkOut(
                cycle_index=index,
                accepted=bool(cycle.accepted),
                params=int(cycle.params),
                flops=int(cycle.flops),
                flops_reduction=_ratio(base_cycle.flops, cycle.flops),
                speedup=speedup,
                latency_median_us=medians,
                bits={fmt: row.total_bits for fmt, row in formats.items()},
                bits_per_param={fmt: _ratio(row.total_bits, cycle.params) for fmt, row in formats.items()},
            )
        )
    return baseline, out


def experiment_benchmarks(session: Session, experiment_id: int) -> ExperimentBenchmarks:
    """An experiment's benchmark rows and, per cycle, FLOPs reduction against measured speed-up.

    Raises:
        NotFound: no such experiment.
    """
    experiment = session.execute(
        select(
            Experiment.status, Experiment.final_cycle, Experiment.latency_speedup, Experiment.progress_detail
        ).where(Experiment.id == experiment_id)
    ).first()
    if experiment is None:
        raise NotFound("experiment", experiment_id)
    rows = [
        TFLiteBenchmarkOut.model_validate(row)
        for row in session.scalars(
            select(TFLiteBenchmark)
            .where(TFLiteBenchmark.experiment_id == experiment_id)
            .order_by(TFLiteBenchmark.cycle_index, TFLiteBenchmark.id)
        )
    ]
    cycles = session.execute(
        select(Cycle.index, Cycle.accepted, Cycle.params, Cycle.flops).where(
            Cycle.experiment_id == experiment_id
        )
    ).all()
    baseline, compared = compare_cycles(cycles, rows)
    return ExperimentBenchmarks(
        experiment_id=experiment_id,
        status=Status(experiment.status),
        benchmarking=ProgressDetail.read(experiment.progress_detail).stage is Stage.benchmarking,
        final_cycle=experiment.final_cycle,
        baseline_cycle=baseline,
        latency_speedup=experiment.latency_speedup,
        rows=rows,
        cycles=compared,
    )
