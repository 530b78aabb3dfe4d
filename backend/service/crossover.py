"""Crossover runs in the database: create and queue, list and read, and the worker's claim and results.

A crossover run times a dense product against a sparse one for one kernel shape across densities
(``worker.crossover`` runs it with ``worker.engine.sparse_bench``). The web side saves the row
(``queued``), commits, then sends its id; a worker claims it with one conditional UPDATE (``queued`` →
``running``), so a duplicate delivery does nothing, and records ``succeeded`` with the timings or
``failed`` with the reason. A row left ``running`` by a worker that died may be claimed again once it
is older than the task time limit (Celery has killed any task by then). No TensorFlow here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from backend.models import CrossoverRun, CrossoverStatus, utcnow
from backend.schemas import CrossoverCreate, CrossoverCreated, CrossoverOut
from backend.service.benchmarks import TaskQueue
from backend.service.errors import NotFound, QueueUnavailable
from backend.service.runs import MAX_ERROR_CHARS, rowcount

#: The Celery task that runs one crossover; its only argument is the run's id.
CROSSOVER_TASK = "prunelab.crossover"
#: Most runs one listing returns.
MAX_LISTED = 500


@dataclass(frozen=True)
class CrossoverParams:
    """What a worker needs to run a claimed crossover (see ``backend.schemas.CrossoverCreate``)."""

    id: int
    rows: int
    cols: int
    batch: int
    backends: tuple[str, ...]
    densities: tuple[float, ...]
    runs: int
    warmup: int
    threads: int
    block_rows: int


def create_run(session: Session, queue: TaskQueue, request: CrossoverCreate) -> CrossoverCreated:
    """Save a queued crossover run, commit, then send its id to the workers.

    Args:
        session: an open session; it is committed here (before sending).
        queue: sends ``CROSSOVER_TASK`` with the id.
        request: the validated shape, densities, back ends and timing settings.

    Returns:
        The new run's id.

    Raises:
        QueueUnavailable: the queue refused the id; the run is kept, marked ``failed`` with the error.
    """
    row = CrossoverRun(
        rows=request.rows,
        cols=request.cols,
        batch=request.batch,
        backends=list(request.backends),
        densities=list(request.densities),
        runs=request.runs,
        warmup=request.warmup,
        threads=request.threads,
        block_rows=request.block_rows,
        status=CrossoverStatus.queued.value,
    )
    session.add(row)
    session.commit()
    run_id = row.id
    try:
        queue.send(CROSSOVER_TASK, run_id)
    except Exception as exc:
        message = f"could not be queued: {type(exc).__name__}: {exc}"
        fail(session, run_id, message)
        session.commit()
        raise QueueUnavailable(f"crossover run {run_id} was saved but {message}") from exc
    return CrossoverCreated(id=run_id)


def list_runs(session: Session, limit: int = 50, offset: int = 0) -> list[CrossoverOut]:
    """Crossover runs, newest first.

    Args:
        session: an open session.
        limit: at most this many (1 to ``MAX_LISTED``). Default 50.
        offset: runs to skip. Default 0.
    """
    rows = session.scalars(
        select(CrossoverRun).order_by(CrossoverRun.id.desc()).limit(min(limit, MAX_LISTED)).offset(offset)
    )
    return [CrossoverOut.model_validate(row) for row in rows]


def get_run(session: Session, run_id: int) -> CrossoverOut:
    """One crossover run.

    Raises:
        NotFound: no such run.
    """
    row = session.get(CrossoverRun, run_id)
    if row is None:
        raise NotFound("crossover run", run_id)
    return CrossoverOut.model_validate(row)


# --------------------------------------------------------------------------------------------- worker side


def claim(
    session: Session, run_id: int, worker: str, stale_seconds: float, *, now: datetime | None = None
) -> CrossoverParams | None:
    """Take a queued run (or one left running longer than ``stale_seconds``) for this worker.

    Args:
        session: the caller's session (commit it to make the claim visible).
        run_id: the run the task was given.
        worker: who claims (host/pid), stored on the row.
        stale_seconds: a running row started longer ago than this has no live worker (the task time
            limit).
        now: the current time. Default now.

    Returns:
        The run's parameters, or None when there is nothing to do (missing, finished, running elsewhere).
    """
    now = now or utcnow()
    stale = (CrossoverRun.status == CrossoverStatus.running.value) & (
        CrossoverRun.started_at < now - timedelta(seconds=stale_seconds)
    )
    result = session.execute(
        update(CrossoverRun)
        .where(CrossoverRun.id == run_id, or_(CrossoverRun.status == CrossoverStatus.queued.value, stale))
        .values(status=CrossoverStatus.running.value, started_at=now, worker=worker[:200], error=None)
        .execution_options(synchronize_session=False)
    )
    if rowcount(result) != 1:
        return None
    row = session.get_one(CrossoverRun, run_id)
    session.refresh(row)
    return CrossoverParams(
        id=row.id,
        rows=row.rows,
        cols=row.cols,
        batch=row.batch,
        backends=tuple(row.backends),
        densities=tuple(float(d) for d in row.densities),
        runs=row.runs,
        warmup=row.warmup,
        threads=row.threads,
        block_rows=row.block_rows,
    )


def succeed(
    session: Session,
    run_id: int,
    timings: Mapping[str, Sequence[Mapping[str, Any]]],
    crossover: Mapping[str, float | None],
    *,
    now: datetime | None = None,
) -> bool:
    """Store a running run's results and mark it ``succeeded``.

    Args:
        session: the caller's session.
        run_id: the run.
        timings: per back end, one timing per density (``DensityTiming`` fields).
        crossover: per back end, the crossover density or None.
        now: the current time. Default now.

    Returns:
        False when the run was no longer ``running`` (nothing is written).
    """
    result = session.execute(
        update(CrossoverRun)
        .where(CrossoverRun.id == run_id, CrossoverRun.status == CrossoverStatus.running.value)
        .values(
            status=CrossoverStatus.succeeded.value,
            timings={backend: [dict(point) for point in points] for backend, points in timings.items()},
            crossover=dict(crossover),
            finished_at=now or utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


def fail(session: Session, run_id: int, error: str, *, now: datetime | None = None) -> bool:
    """Mark an unfinished run ``failed`` with the reason.

    Returns:
        False when the run had already finished (nothing is written).
    """
    result = session.execute(
        update(CrossoverRun)
        .where(
            CrossoverRun.id == run_id,
            CrossoverRun.status.in_([CrossoverStatus.queued.value, CrossoverStatus.running.value]),
        )
        .values(
            status=CrossoverStatus.failed.value, error=error[:MAX_ERROR_CHARS], finished_at=now or utcnow()
        )
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1
