"""Crossover runs: time dense against sparse products of one kernel shape across densities, per back end.

``run_sweeps`` drives ``worker.engine.sparse_bench`` (``tensorflow``: ``tf.sparse.sparse_dense_matmul``;
``litert``: TFLite's sparse storage under the LiteRT interpreter) for one request, in this process;
``run_claimed`` is the Celery task's body: claim the stored run, sweep, store the timings and the
crossover densities, or the reason it failed. TensorFlow is imported by the sweeps only.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from backend.db import session_scope
from backend.schemas import CrossoverCreate
from backend.service import crossover
from backend.service.crossover import CrossoverParams

logger = logging.getLogger(__name__)

#: Seed of the kernels and inputs (every run of one request times the same matrices).
SEED = 0


def run_sweeps(request: CrossoverCreate | CrossoverParams) -> dict[str, Any]:
    """Sweep every requested back end over the requested densities.

    The TensorFlow sweep runs with the process's intra-op threads (``prunelab crossover`` sets them to
    ``threads`` before TensorFlow's first op); LiteRT runs with ``threads`` interpreter threads and
    ``block_rows``.

    Args:
        request: the shape, batch, densities, back ends and timing settings.

    Returns:
        ``worker.engine.sparse_bench.SparseSweep`` by back end, in the order requested.

    Raises:
        ValueError: a density outside (0, 1] or ``block_rows`` not dividing ``rows``.
        ConversionError: the TFLite converter refused a one-layer model.
        RuntimeError: a sparse product disagreed with the dense one (a broken set-up).
    """
    from worker.engine.sparse_bench import sweep_litert, sweep_tensorflow

    shape = (request.rows, request.cols, request.batch)
    densities = list(request.densities)
    sweeps: dict[str, Any] = {}
    for backend in request.backends:
        if backend == "tensorflow":
            sweeps[backend] = sweep_tensorflow(*shape, densities, request.runs, request.warmup, seed=SEED)
        elif backend == "litert":
            sweeps[backend] = sweep_litert(
                *shape,
                densities,
                request.runs,
                request.warmup,
                threads=request.threads,
                block_rows=request.block_rows,
                seed=SEED,
            )
        else:
            raise ValueError(f"unknown back end '{backend}'; back ends: tensorflow, litert")
    return sweeps


def run_claimed(sessions: sessionmaker[Session], run_id: int, worker: str, *, stale_seconds: float) -> str:
    """Claim a stored crossover run, sweep it, and record the outcome.

    Args:
        sessions: the database the run is in.
        run_id: the run.
        worker: who runs it (host/pid).
        stale_seconds: a ``running`` row older than this is taken over (the task time limit).

    Returns:
        ``succeeded``, ``failed``, or ``skip`` (missing, finished, or running elsewhere).
    """
    with session_scope(sessions) as session:
        params = crossover.claim(session, run_id, worker, stale_seconds)
    if params is None:
        logger.info("crossover %s: nothing to do", run_id)
        return "skip"
    try:
        sweeps = run_sweeps(params)
    except Exception as error:  # a bad request or set-up, a time limit: the run fails with the reason
        logger.exception("crossover %s failed", run_id)
        with session_scope(sessions) as session:
            crossover.fail(session, run_id, f"{type(error).__name__}: {error}")
        return "failed"
    timings = {backend: [vars(point) for point in sweep.points] for backend, sweep in sweeps.items()}
    densities = {backend: sweep.crossover for backend, sweep in sweeps.items()}
    with session_scope(sessions) as session:
        stored = crossover.succeed(session, run_id, timings, densities)
    logger.info("crossover %s: crossover densities %s", run_id, densities)
    return "succeeded" if stored else "skip"
