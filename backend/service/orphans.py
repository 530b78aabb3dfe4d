"""Experiments whose worker died: finding them and giving them back to the queue (no TF).

A running experiment whose heartbeat is older than the lease is an **orphan**. The worker's sweep
re-queues it (its ``attempts`` kept) or, when its attempts are used up, fails it. Every change is
conditional on the row still being a stale running one, so a sweep never races a live worker's claim
(``backend.service.runs``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, select, update
from sqlalchemy.orm import Session

from backend.models import Experiment, Status, utcnow
from backend.service.runs import lost_reason, rowcount, stale_running


@dataclass(frozen=True)
class Orphan:
    """A running experiment whose worker stopped proving it is alive."""

    id: int
    attempts: int
    worker: str | None
    heartbeat_at: datetime | None


def find_orphans(session: Session, lease_seconds: float, *, now: datetime | None = None) -> list[Orphan]:
    """Running experiments whose heartbeat is older than ``lease_seconds`` (or missing), oldest first."""
    rows = session.execute(
        select(Experiment.id, Experiment.attempts, Experiment.worker, Experiment.heartbeat_at)
        .where(stale_running(now or utcnow(), lease_seconds))
        .order_by(Experiment.id)
    ).all()
    return [Orphan(id=r.id, attempts=r.attempts, worker=r.worker, heartbeat_at=r.heartbeat_at) for r in rows]


class OrphanFate(enum.StrEnum):
    """What :func:`release_orphan` did."""

    requeued = "requeued"  # back to queued (attempts kept): enqueue it again
    failed = "failed"  # out of attempts: failed with "worker lost N times"
    gone = "gone"  # no longer an orphan (claimed, finished or heartbeating again): leave it


def release_orphan(
    session: Session,
    experiment_id: int,
    lease_seconds: float,
    max_attempts: int,
    *,
    now: datetime | None = None,
) -> OrphanFate:
    """Give an orphaned experiment back to the queue, or fail it when its attempts are used up.

    Conditional, like :func:`~backend.service.runs.claim`: only a row that is still running with a
    stale heartbeat changes. Enqueue the id *before* committing a ``requeued`` result: if the broker
    refuses, roll back and the row stays an orphan for the next sweep; if the commit fails after the
    send, the delivery still takes the stale row over.

    Args:
        session: the caller's session.
        experiment_id: an id from :func:`find_orphans`.
        lease_seconds: as in :func:`~backend.service.runs.claim`.
        max_attempts: as in :func:`~backend.service.runs.claim`.
        now: the current time. Default now.

    Returns:
        What happened to the row.
    """
    now = now or utcnow()
    stale = and_(Experiment.id == experiment_id, stale_running(now, lease_seconds))
    attempts = session.scalar(select(Experiment.attempts).where(stale))
    if attempts is None:
        return OrphanFate.gone
    if attempts >= max_attempts:
        done = session.execute(
            update(Experiment)
            .where(stale, Experiment.attempts == attempts)
            .values(status=Status.failed.value, error=lost_reason(attempts, max_attempts), finished_at=now)
            .execution_options(synchronize_session=False)
        )
        return OrphanFate.failed if rowcount(done) else OrphanFate.gone
    done = session.execute(
        update(Experiment)
        .where(stale, Experiment.attempts == attempts)
        .values(status=Status.queued.value)
        .execution_options(synchronize_session=False)
    )
    return OrphanFate.requeued if rowcount(done) else OrphanFate.gone
