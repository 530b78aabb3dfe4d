"""Crossover runs in the database: create and queue, list and read, and the worker's claim and results.

A crossover run times a dense product against a sparse one for one kernel shape across densities
(``worker.crossover`` runs it with ``worker.engine.sparse_bench``). The web side saves the row
(``queued``), commits, then sends its id; a worker claims it with one conditional UPDATE (``queued`` →
``running``), so a duplicate delivery does nothing, and records ``succeeded`` with the timings or
``failed`` with the reason. The run is leased like an experiment (``backend.service.runs``): its
worker heartbeats, a row whose heartbeat is older than the lease is taken over by the next delivery
or re-queued by the worker's sweep (``backend.service.orphans``), each start counts an attempt, and
after ``max_attempts`` the run fails ("worker lost N times"). :func:`cancel_run` cancels a queued run
at once and asks a running one's worker to stop between densities. No TensorFlow here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from backend.models import CrossoverRun, CrossoverStatus, utcnow
from backend.schemas_benchmarks import CrossoverCreate, CrossoverCreated, CrossoverOut
from backend.service import runs
from backend.service.errors import Conflict, NotFound
from backend.service.ports import TaskQueue, dispatch_saved
from backend.service.runs import MAX_ERROR_CHARS, ClaimAction, CrossoverLease, LeaseLost, rowcount

#: The Celery task that runs one crossover; its only argument is the run's id.
CROSSOVER_TASK = "prunelab.crossover"
#: Most runs one listing returns.
MAX_LISTED = 500


@dataclass(frozen=True)
class CrossoverParams:
    """What a worker needs to run a claimed crossover (see ``backend.schemas_benchmarks.CrossoverCreate``).

    ``lease`` is the claim's: every write the worker makes is conditional on it.
    """

    lease: CrossoverLease
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

    def mark_failed(message: str) -> None:
        fail(session, run_id, message)
        session.commit()

    dispatch_saved(lambda: queue.send(CROSSOVER_TASK, run_id), mark_failed, f"crossover run {run_id}")
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


@dataclass(frozen=True)
class CrossoverClaim:
    """The outcome of :func:`claim`.

    Attributes:
        action: ``fresh`` (run it, with ``params``), ``skip`` or ``failed`` (attempts used up).
        reason: why, in words.
        params: the run's parameters and lease for ``fresh``; None otherwise.
    """

    action: ClaimAction
    reason: str
    params: CrossoverParams | None = None


def claim(
    session: Session,
    run_id: int,
    worker: str,
    lease_seconds: float,
    max_attempts: int,
    *,
    now: datetime | None = None,
) -> CrossoverClaim:
    """Take a queued run, or a running one whose heartbeat is older than the lease, for this worker.

    The same conditional UPDATE as an experiment's claim (``backend.service.runs.take``): attempts + 1,
    heartbeat now. A cancelled or exhausted run nobody is running is finished instead.

    Args:
        session: the caller's session (commit it to make the claim visible).
        run_id: the run the task was given.
        worker: who claims (host/pid), stored on the row.
        lease_seconds: how old a heartbeat may be before its worker is presumed dead.
        max_attempts: deliveries allowed to start the run.
        now: the current time. Default now.

    Returns:
        ``fresh`` with the parameters and lease, or ``skip``/``failed`` with the reason.
    """
    now = now or utcnow()
    attempt = runs.take(session, CrossoverRun, run_id, worker, lease_seconds, max_attempts, now)
    if attempt is None:
        settled = runs.settle_unclaimed(session, CrossoverRun, run_id, lease_seconds, max_attempts, now)
        return CrossoverClaim(settled.action, settled.reason)
    row = session.get_one(CrossoverRun, run_id)
    session.refresh(row)
    params = CrossoverParams(
        lease=CrossoverLease(run_id=run_id, attempt=attempt, worker=worker),
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
    return CrossoverClaim(ClaimAction.fresh, f"attempt {attempt}", params)


def succeed(
    session: Session,
    lease: CrossoverLease,
    timings: Mapping[str, Sequence[Mapping[str, Any]]],
    crossover: Mapping[str, float | None],
    *,
    now: datetime | None = None,
) -> bool:
    """Store a running run's results and mark it ``succeeded``.

    Args:
        session: the caller's session.
        lease: the worker's lease on the run.
        timings: per back end, one timing per density (``DensityTiming`` fields).
        crossover: per back end, the crossover density or None.
        now: the current time. Default now.

    Returns:
        False when the lease was lost (cancelled, taken over or finished; nothing is written).
    """
    now = now or utcnow()
    try:
        runs.touch(
            session,
            lease,
            now,
            status=CrossoverStatus.succeeded.value,
            timings={backend: [dict(point) for point in points] for backend, points in timings.items()},
            crossover=dict(crossover),
            finished_at=now,
        )
    except LeaseLost:
        return False
    return True


def mark_cancelled(session: Session, lease: CrossoverLease, *, now: datetime | None = None) -> bool:
    """Mark a run ``cancelled`` after its worker stopped at a cancel request.

    Returns:
        False when the lease was already lost (nothing is written).
    """
    now = now or utcnow()
    try:
        runs.touch(session, lease, now, status=CrossoverStatus.cancelled.value, finished_at=now)
    except LeaseLost:
        return False
    return True


def cancel_run(session: Session, run_id: int) -> CrossoverOut:
    """Cancel a queued run at once, or ask a running one's worker to stop before its next density.

    The same semantics as ``backend.service.commands.cancel_experiment``: single conditional UPDATEs,
    so a worker claiming at the same moment either finds the run cancelled or sees the request.

    Args:
        session: an open session; it is committed here.
        run_id: the run.

    Returns:
        The run after the change: ``cancelled``, or ``running`` with ``cancel_requested`` set (asking
        twice is harmless).

    Raises:
        NotFound: no such run.
        Conflict: the run has already finished.
    """
    if not runs.request_cancel(session, CrossoverRun, run_id):
        status = session.scalar(select(CrossoverRun.status).where(CrossoverRun.id == run_id))
        if status is None:
            raise NotFound("crossover run", run_id)
        raise Conflict(f"crossover run {run_id} has already finished ({status}); nothing to cancel")
    session.commit()
    session.expire_all()
    return get_run(session, run_id)


def fail(session: Session, run_id: int, error: str, *, now: datetime | None = None) -> bool:
    """Mark an unfinished run ``failed`` with the reason, whoever holds it (the queue refused its id).

    A worker fails the run it holds with ``backend.service.runs.fail`` and its lease instead.

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
