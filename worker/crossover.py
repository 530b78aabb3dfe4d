"""Crossover runs: time dense against sparse products of one kernel shape across densities, per back end.

``run_sweeps`` drives ``worker.engine.sparse_bench`` (``tensorflow``: ``tf.sparse.sparse_dense_matmul``;
``litert``: TFLite's sparse storage under the LiteRT interpreter) for one request, in this process;
``run_claimed`` is the Celery task's body: claim the stored run (a lease, as for experiments), sweep
under a heartbeat, stop between densities when cancelled, store the timings and the crossover
densities, or the reason it failed. TensorFlow is imported by the sweeps only.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from backend.db import session_scope
from backend.models import CrossoverRun
from backend.schemas_benchmarks import CrossoverCreate
from backend.service import crossover, runs
from backend.service.crossover import CrossoverParams
from worker.recorder import Heartbeat

logger = logging.getLogger(__name__)

#: Seed of the kernels and inputs (every run of one request times the same matrices).
SEED = 0


class CrossoverCancelled(Exception):
    """The run was cancelled (or its lease lost) between two densities."""


def run_sweeps(
    request: CrossoverCreate | CrossoverParams, stop: Callable[[], bool] | None = None
) -> dict[str, Any]:
    """Sweep every requested back end over the requested densities.

    The TensorFlow sweep runs with the process's intra-op threads (``prunelab crossover`` sets them to
    ``threads`` before TensorFlow's first op); LiteRT runs with ``threads`` interpreter threads and
    ``block_rows``. With ``stop``, each density is timed on its own (dense and sparse still
    interleaved) and ``stop`` is asked before every density of every back end.

    Args:
        request: the shape, batch, densities, back ends and timing settings.
        stop: says whether to stop (cancel requested, lease lost). Default: never ask; each back end's
            densities are timed in one interleaved sweep.

    Returns:
        ``worker.engine.sparse_bench.SparseSweep`` by back end, in the order requested.

    Raises:
        ValueError: a density outside (0, 1] or ``block_rows`` not dividing ``rows``.
        ConversionError: the TFLite converter refused a one-layer model.
        RuntimeError: a sparse product disagreed with the dense one (a broken set-up).
        CrossoverCancelled: ``stop`` said so.
    """
    densities = list(request.densities)
    groups = [[density] for density in densities] if stop is not None else [densities]
    sweeps: dict[str, Any] = {}
    for backend in request.backends:
        parts = []
        for group in groups:
            if stop is not None and stop():
                raise CrossoverCancelled(f"stopped before {backend} at density {group[0]}")
            parts.append(_sweep(request, backend, group))
        points = sorted((point for part in parts for point in part.points), key=lambda point: point.density)
        sweeps[backend] = dataclasses.replace(parts[0], points=tuple(points))
    return sweeps


def _sweep(request: CrossoverCreate | CrossoverParams, backend: str, densities: list[float]) -> Any:
    """One back end's sweep over ``densities``."""
    from worker.engine.sparse_bench import sweep_litert, sweep_tensorflow

    shape = (request.rows, request.cols, request.batch)
    if backend == "tensorflow":
        return sweep_tensorflow(*shape, densities, request.runs, request.warmup, seed=SEED)
    if backend == "litert":
        return sweep_litert(
            *shape,
            densities,
            request.runs,
            request.warmup,
            threads=request.threads,
            block_rows=request.block_rows,
            seed=SEED,
        )
    raise ValueError(f"unknown back end '{backend}'; back ends: tensorflow, litert")


def run_claimed(
    sessions: sessionmaker[Session],
    run_id: int,
    worker: str,
    *,
    lease_seconds: float,
    max_attempts: int,
    heartbeat_seconds: float,
) -> str:
    """Claim a stored crossover run, sweep it under a heartbeat, and record the outcome.

    Args:
        sessions: the database the run is in.
        run_id: the run.
        worker: who runs it (host/pid).
        lease_seconds: a ``running`` row whose heartbeat is older than this is taken over.
        max_attempts: deliveries allowed to start the run; then it fails ("worker lost N times").
        heartbeat_seconds: how often the worker proves it is alive.

    Returns:
        ``succeeded``, ``failed``, ``cancelled``, ``lease_lost``, or ``skip`` (missing, finished, or
        running elsewhere).
    """
    with session_scope(sessions) as session:
        claimed = crossover.claim(session, run_id, worker, lease_seconds, max_attempts)
    logger.info("crossover %s: %s (%s)", run_id, claimed.action.value, claimed.reason)
    params = claimed.params
    if params is None:
        return claimed.action.value
    lease = params.lease
    with Heartbeat(sessions, lease, heartbeat_seconds) as heartbeat:

        def stop() -> bool:
            if heartbeat.lost:
                return True
            with session_scope(sessions) as session:
                return runs.is_cancel_requested(session, run_id, CrossoverRun)

        try:
            sweeps = run_sweeps(params, stop)
        except CrossoverCancelled:
            with session_scope(sessions) as session:
                marked = crossover.mark_cancelled(session, lease)
            return "cancelled" if marked else "lease_lost"
        except Exception as error:  # a bad request or set-up, a time limit: the run fails with the reason
            logger.exception("crossover %s failed", run_id)
            with session_scope(sessions) as session:
                marked = runs.fail(session, lease, f"{type(error).__name__}: {error}")
            return "failed" if marked else "lease_lost"
        timings = {backend: [vars(point) for point in sweep.points] for backend, sweep in sweeps.items()}
        densities = {backend: sweep.crossover for backend, sweep in sweeps.items()}
        with session_scope(sessions) as session:
            stored = crossover.succeed(session, lease, timings, densities)
    logger.info("crossover %s: crossover densities %s", run_id, densities)
    return "succeeded" if stored else "lease_lost"
