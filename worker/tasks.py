"""The Celery tasks: run an experiment (claim it by id, run the engine with a recorder, benchmark the
chosen cycles' models as TFLite, record how it ended), benchmark a succeeded experiment again, and run
a dense-versus-sparse crossover.

TensorFlow, Keras and the engine's model code are imported inside the task body only: the worker's
parent process imports this module, and the prefork pool forks its children from that process.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

import pydantic
from celery.exceptions import SoftTimeLimitExceeded
from celery.utils.log import get_task_logger
from sqlalchemy.orm import Session, sessionmaker

from backend.db import make_engine, make_session_factory, session_scope
from backend.memory import MemoryLimitExceeded, check_memory
from backend.queue import RUN_EXPERIMENT_TASK
from backend.service import recording, runs
from backend.service.benchmarks import BENCHMARK_TASK
from backend.service.crossover import CROSSOVER_TASK
from backend.settings import Settings, get_settings
from prunespec.spec import ExperimentSpec, NpzDataset
from prunespec.stops import StopReason
from worker.celery_app import LossRecordingRequest, app
from worker.engine.data import Dataset, DatasetError
from worker.recorder import DatabaseRecorder, Heartbeat

logger = get_task_logger(__name__)

#: Session factories of this process, by (pid, database URL): a forked child makes its own.
_SESSIONS: dict[tuple[int, str], sessionmaker[Session]] = {}


def sessions_for(settings: Settings) -> sessionmaker[Session]:
    """This process's session factory for the configured database (created on first use)."""
    key = (os.getpid(), settings.database_url)
    if key not in _SESSIONS:
        _SESSIONS[key] = make_session_factory(make_engine(settings))
    return _SESSIONS[key]


@app.task(name=RUN_EXPERIMENT_TASK, bind=True, Request=LossRecordingRequest)
def run_experiment(self: Any, experiment_id: int) -> str:
    """Run one experiment, or do nothing when another delivery owns it.

    Args:
        experiment_id: the experiment's id (the only thing on the queue).

    Returns:
        What happened: ``succeeded``, ``cancelled``, ``failed``, ``lease_lost`` or ``skip``.
    """
    settings = get_settings()
    sessions = sessions_for(settings)
    worker = f"{self.request.hostname or socket.gethostname()}/{os.getpid()}"
    with session_scope(sessions) as session:
        claim = runs.claim(session, experiment_id, worker, settings.lease_seconds, settings.max_attempts)
    logger.info("experiment %s: %s (%s)", experiment_id, claim.action.value, claim.reason)
    if claim.lease is None:
        return claim.action.value
    with Heartbeat(sessions, claim.lease, settings.heartbeat_seconds) as heartbeat:
        try:
            return _run_claimed(sessions, settings, claim, claim.lease, heartbeat)
        except runs.LeaseLost as lost:
            logger.warning("experiment %s: %s; leaving it to its new owner", experiment_id, lost)
            return "lease_lost"


def _run_claimed(
    sessions: sessionmaker[Session],
    settings: Settings,
    claim: runs.Claim,
    lease: runs.Lease,
    heartbeat: Heartbeat,
) -> str:
    """Validate the stored spec and its memory estimate, then finish or run the engine; turn every
    failure into a failed row."""
    try:
        spec = ExperimentSpec.model_validate(claim.spec)
    except pydantic.ValidationError as invalid:
        return _fail(sessions, lease, f"invalid spec: {invalid}")
    try:
        check_memory(spec, settings.worker_memory_limit_mb)  # before TensorFlow builds anything
    except MemoryLimitExceeded as too_large:
        return _fail(sessions, lease, str(too_large))
    try:
        if claim.action is runs.ClaimAction.finish and claim.last_cycle is not None:
            # every cycle is recorded (the last worker died benchmarking or finishing): benchmark, finish
            reason = recording.recorded_stop_reason(claim.last_cycle, spec.pruning.max_cycles)
            return _finish(sessions, settings, spec, lease, heartbeat, reason)
        return _run_engine(sessions, settings, spec, claim, lease, heartbeat)
    except runs.LeaseLost:
        raise
    except DatasetError as error:
        return _fail(sessions, lease, str(error))
    except SoftTimeLimitExceeded:
        return _fail(sessions, lease, f"time limit exceeded ({settings.soft_time_limit} s)")
    except Exception as error:  # a spec the engine refuses, or a bug: fail it, keep the finished cycles
        logger.exception("experiment %s failed", lease.experiment_id)
        return _fail(sessions, lease, f"{type(error).__name__}: {error}")


def _run_engine(
    sessions: sessionmaker[Session],
    settings: Settings,
    spec: ExperimentSpec,
    claim: runs.Claim,
    lease: runs.Lease,
    heartbeat: Heartbeat,
) -> str:
    """Import TensorFlow, load the data (and the checkpoint), run the cycles, record how they ended."""
    import keras
    import tensorflow as tf

    from worker.engine.cycle import ExperimentCancelled, run_cycles
    from worker.engine.data.cache import cached_dataset
    from worker.engine.training import objective
    from worker.resume import resume_point
    from worker.runtime import prepare
    from worker.uploaded import initial_weights, uploaded_dataset

    runtime = prepare(settings)  # threads before TensorFlow does any work; the device it will use
    with session_scope(sessions) as session:
        recording.record_versions(session, lease, *runtime.versions(tf.__version__, keras.__version__))
    loading = time.perf_counter()
    if isinstance(spec.dataset, NpzDataset) and spec.dataset.id is not None:
        data = uploaded_dataset(sessions, spec.dataset, spec.seed)  # by id from the upload store
    else:
        data = cached_dataset(spec.dataset, seed=spec.seed, data_dirs=settings.data_dirs())
    logger.info(
        "experiment %s: %s, %s/%s threads; data ready in %.2f s",
        lease.experiment_id,
        runtime.device,
        runtime.intra_op_threads,
        runtime.inter_op_threads,
        time.perf_counter() - loading,
    )
    start = None
    if claim.action is runs.ClaimAction.resume:
        with session_scope(sessions) as session:
            start = resume_point(session, lease.experiment_id)
    goal = objective(spec.training)
    recorder = DatabaseRecorder(
        sessions,
        lease,
        spec,
        metric_name=goal.metric_name,
        higher_is_better=goal.higher_is_better,
        heartbeat=heartbeat,
        wall_seconds=settings.max_wall_seconds,
    )
    try:
        weights = initial_weights(sessions, spec) if start is None else None
        result = run_cycles(spec, data, recorder, resume=start, initial_weights=weights)
    except ExperimentCancelled:
        if recorder.timed_out:
            return _fail(sessions, lease, f"{_wall_time_used(settings)} before its first cycle finished")
        return _cancelled(sessions, lease)
    final_cycle = result.final.index if result.final_position >= 0 else None
    if result.stop_reason == StopReason.cancelled and recorder.timed_out:
        # the finished cycles stand: the newest accepted one is the result, as after max_cycles
        logger.info("experiment %s: %s", lease.experiment_id, _wall_time_used(settings))
        return _finish(sessions, settings, spec, lease, heartbeat, StopReason.time_limit, final_cycle, data)
    if result.stop_reason == "cancelled":
        return _cancelled(sessions, lease)
    return _finish(sessions, settings, spec, lease, heartbeat, result.stop_reason, final_cycle, data)


def _wall_time_used(settings: Settings) -> str:
    return (
        f"stopped after {settings.max_wall_seconds} s, the wall time this server allows an experiment "
        "(PRUNELAB_MAX_WALL_SECONDS)"
    )


def _finish(
    sessions: sessionmaker[Session],
    settings: Settings,
    spec: ExperimentSpec,
    lease: runs.Lease,
    heartbeat: Heartbeat,
    stop_reason: str,
    final_cycle: int | None = None,
    data: Dataset | None = None,
) -> str:
    """Benchmark the cycles the spec names, then store the rows and finish in one transaction."""
    from worker.experiment_benchmarks import BenchmarkCancelled, benchmark_recorded_cycles, stop_check

    try:
        measured = benchmark_recorded_cycles(
            sessions,
            lease.experiment_id,
            spec,
            choice=spec.benchmark.cycles,
            data_dirs=settings.data_dirs(),
            data=data,
            final=final_cycle,
            lease=lease,
            cancelled=stop_check(sessions, lease, lambda: heartbeat.lost),
        )
    except BenchmarkCancelled:
        return _cancelled(sessions, lease)
    with session_scope(sessions) as session:
        if measured is not None:
            measured.store(session, lease.experiment_id, lease=lease)
        recording.finish(session, lease, stop_reason, final_cycle)
    logger.info("experiment %s: succeeded (%s)", lease.experiment_id, stop_reason)
    return "succeeded"


def _cancelled(sessions: sessionmaker[Session], lease: runs.Lease) -> str:
    with session_scope(sessions) as session:
        marked = runs.mark_cancelled(session, lease)
    return "cancelled" if marked else "lease_lost"


def _fail(sessions: sessionmaker[Session], lease: runs.Lease, error: str) -> str:
    with session_scope(sessions) as session:
        marked = runs.fail(session, lease, error)
    logger.warning("experiment %s: failed: %s", lease.experiment_id, error)
    return "failed" if marked else "lease_lost"


@app.task(name=BENCHMARK_TASK, bind=True)
def benchmark_experiment(self: Any, experiment_id: int, cycles: str | None = None) -> str:
    """Convert and time a succeeded experiment's cycles again, replacing its benchmark rows.

    Args:
        experiment_id: the experiment.
        cycles: ``first_last`` or ``every``; None: the spec's choice.

    Returns:
        ``benchmarked``, or ``skip`` when the experiment is missing, not succeeded or has no cycles.
    """
    from worker.experiment_benchmarks import rerun

    settings = get_settings()
    measured = rerun(sessions_for(settings), experiment_id, cycles, data_dirs=settings.data_dirs())
    logger.info("experiment %s: benchmarks %s", experiment_id, "stored" if measured else "skipped")
    return "benchmarked" if measured is not None else "skip"


@app.task(name=CROSSOVER_TASK, bind=True, Request=LossRecordingRequest)
def crossover(self: Any, run_id: int) -> str:
    """Run one crossover (dense against sparse products across densities) and store it.

    Args:
        run_id: the crossover run's id (the only thing on the queue).

    Returns:
        ``succeeded``, ``failed``, ``cancelled``, ``lease_lost``, or ``skip`` when another delivery owns
        the run or it is finished.
    """
    from worker.crossover import run_claimed

    settings = get_settings()
    worker = f"{self.request.hostname or socket.gethostname()}/{os.getpid()}"
    return run_claimed(
        sessions_for(settings),
        run_id,
        worker,
        lease_seconds=settings.lease_seconds,
        max_attempts=settings.max_attempts,
        heartbeat_seconds=settings.heartbeat_seconds,
    )
