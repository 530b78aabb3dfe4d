"""An experiment's TFLite benchmarks from the database: load the chosen cycles' trained models, benchmark
them (``worker.benchmarking``), store the rows (``backend.service.benchmarks``).

Three callers: the experiment task after its cycles (inside the experiment's lease; the rows go into
the same transaction as its finish, so a worker that dies while benchmarking leaves the experiment
``running`` and the next delivery's ``finish`` claim benchmarks again), the benchmark task for a
succeeded experiment (``POST /api/experiments/{id}/benchmarks``), and ``prunelab bench --experiment``.
Imports TensorFlow: import it inside a task or command.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic
from sqlalchemy.orm import Session, sessionmaker

from backend.db import session_scope
from backend.models import Experiment, Status
from backend.service import benchmarks, runs
from prunespec.layers import ModelSpec
from prunespec.spec import BenchmarkSpec, ExperimentSpec
from worker.benchmarking import (
    RECOVERABLE,
    BenchmarkCancelled,
    BenchmarkModel,
    BenchmarkRun,
    benchmark_cycles,
    experiment_inputs,
)
from worker.engine.data import Dataset
from worker.resume import model_from_bytes

logger = logging.getLogger(__name__)

__all__ = ["BenchmarkCancelled", "Measured", "benchmark_recorded_cycles", "rerun", "stop_check"]


@dataclass(frozen=True)
class Measured:
    """A benchmark of an experiment's cycles, ready to store.

    Attributes:
        cycles: the benchmarked cycles, ascending.
        final_cycle: the cycle ``latency_speedup`` is about.
        run: the results.
    """

    cycles: tuple[int, ...]
    final_cycle: int | None
    run: BenchmarkRun

    def store(self, session: Session, experiment_id: int, *, lease: runs.Lease | None = None) -> bool:
        """Replace the experiment's benchmark rows with these (see ``benchmarks.record_benchmarks``)."""
        return benchmarks.record_benchmarks(
            session, experiment_id, self.run.records(), self.run.latency_speedup, lease=lease
        )


def _load(cycle: benchmarks.TrainedCycle) -> BenchmarkModel:
    """A recorded cycle's trained model, or a missing model with the reason it could not be loaded."""
    try:
        spec = ModelSpec.model_validate(cycle.model_spec)
    except pydantic.ValidationError:
        spec = None
    try:
        return BenchmarkModel(cycle.index, model_from_bytes(cycle.trained), spec)
    except RECOVERABLE as error:
        return BenchmarkModel(cycle.index, None, spec, f"cannot load the trained model: {error}")


def benchmark_recorded_cycles(
    sessions: sessionmaker[Session],
    experiment_id: int,
    spec: ExperimentSpec,
    *,
    choice: benchmarks.CycleChoice,
    data_dirs: Sequence[Path] | None = None,
    data: Dataset | None = None,
    final: int | None = None,
    lease: runs.Lease | None = None,
    settings: BenchmarkSpec | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> Measured | None:
    """Mark the experiment ``benchmarking``, then convert, check and time the chosen cycles' models.

    Args:
        sessions: the experiment's database.
        experiment_id: the experiment.
        spec: its spec (data set, loss, and the benchmark settings unless ``settings`` is given).
        choice: which cycles (``none``, ``first_last``, ``every``).
        data_dirs: where its data set files are looked for. Default: the engine's defaults.
        data: its loaded data set (the experiment task has it). Default None: load it.
        final: the final cycle. Default: the experiment's ``final_cycle``, else its newest accepted cycle.
        lease: the running worker's lease; None for a succeeded experiment.
        settings: formats, runs, warmup, threads. Default: the spec's ``benchmark``.
        cancelled: polled between conversions; True raises :class:`BenchmarkCancelled`.

    Returns:
        The benchmark, or None when there is nothing to benchmark (choice ``none``, no cycles, or an
        experiment that is no longer ``succeeded``).

    Raises:
        runs.LeaseLost: with a lease, the worker no longer owns the experiment.
        BenchmarkCancelled: ``cancelled`` said True.
    """
    with session_scope(sessions) as session:
        cycles, final = benchmarks.plan(session, experiment_id, choice, final)
        if not cycles or not benchmarks.mark_benchmarking(session, experiment_id, cycles, lease=lease):
            return None
        trained = benchmarks.trained_cycles(session, experiment_id, cycles)
    logger.info("experiment %s: benchmarking cycles %s", experiment_id, cycles)
    found = {cycle.index: _load(cycle) for cycle in trained}
    models = [
        found.get(index, BenchmarkModel(index, None, error="no trained model is stored")) for index in cycles
    ]
    inputs = experiment_inputs(spec, data, data_dirs=data_dirs)
    run = benchmark_cycles(
        models,
        settings or spec.benchmark,
        inputs,
        baseline_cycle=cycles[0],
        final_cycle=final,
        cancelled=cancelled,
    )
    return Measured(tuple(cycles), final, run)


def stop_check(
    sessions: sessionmaker[Session], lease: runs.Lease, lost: Callable[[], bool]
) -> Callable[[], bool]:
    """A ``cancelled`` callback: True once cancel was requested or the lease was lost.

    Args:
        sessions: the experiment's database.
        lease: the worker's lease.
        lost: says whether the heartbeat found the lease lost.
    """

    def cancelled() -> bool:
        if lost():
            return True
        with session_scope(sessions) as session:
            return runs.is_cancel_requested(session, lease.experiment_id)

    return cancelled


def rerun(
    sessions: sessionmaker[Session],
    experiment_id: int,
    choice: str | None,
    *,
    data_dirs: Sequence[Path] | None = None,
    overrides: dict[str, Any] | None = None,
) -> Measured | None:
    """Benchmark a succeeded experiment again and store the result (the benchmark task, the CLI).

    Args:
        sessions: the experiment's database.
        experiment_id: the experiment.
        choice: ``first_last`` or ``every``; None: the spec's, ``first_last`` when that is ``none``.
        data_dirs: where its data set files are looked for. Default: the engine's defaults.
        overrides: ``benchmark`` fields to use instead of the spec's (``formats``, ``runs``, ...).

    Returns:
        What was stored, or None when the experiment is missing, not ``succeeded``, or has no cycles.

    Raises:
        pydantic.ValidationError: the stored spec, or the overrides, are not valid.
    """
    with session_scope(sessions) as session:
        experiment = session.get(Experiment, experiment_id)
        if experiment is None or experiment.status != Status.succeeded.value:
            return None
        stored_spec = dict(experiment.spec)
    spec = ExperimentSpec.model_validate(stored_spec)
    settings = BenchmarkSpec.model_validate({**spec.benchmark.model_dump(), **(overrides or {})})
    resolved = choice or ("every" if spec.benchmark.cycles == "every" else "first_last")
    if resolved not in ("first_last", "every"):
        raise ValueError(f"cycles must be 'first_last' or 'every', got {resolved!r}")
    try:
        measured = benchmark_recorded_cycles(
            sessions,
            experiment_id,
            spec,
            choice="every" if resolved == "every" else "first_last",
            data_dirs=data_dirs,
            settings=settings,
        )
    except BaseException:
        with session_scope(sessions) as session:
            benchmarks.end_stage(session, experiment_id)
        raise
    if measured is None:
        return None
    with session_scope(sessions) as session:
        stored = measured.store(session, experiment_id)
    return measured if stored else None
