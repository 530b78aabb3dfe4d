"""Runs no worker is running: finding them and giving them back to the queue (no TF).

Two kinds, for experiments and crossover runs alike (``backend.service.runs.LeasedTable``):

* An **orphan** is a running row whose heartbeat is older than the lease (its worker died). The
  worker's sweep re-queues it (its ``attempts`` kept) or, when its attempts are used up, fails it.
* An **unclaimed** row is a queued one that no worker claimed for ``requeue_after_seconds`` since it
  was created or last re-queued: its broker message was lost (Redis restarted empty) or is still
  waiting behind other work. The sweep sends its id again. A duplicate delivery is harmless (the claim
  is a conditional UPDATE, so a second delivery skips), and the wait before the next re-send doubles
  with every re-send (at most :data:`MAX_REQUEUE_BACKOFF` times the age), so a long backlog is not
  flooded with copies.

Every change is conditional on the row still being what the sweep found, so a sweep never races a
live worker's claim, and of two sweeps at once only one re-sends a row.

When a worker's pool sees its child process die (Celery's ``WorkerLostError``: "Worker exited
prematurely: signal 9 (SIGKILL)"), :func:`record_lost_worker` stores how it ended on the row
(``last_loss``, shown in the final "worker lost N times" error) and expires its heartbeat, so the
redelivered message takes it over at once instead of after the lease.
"""

from __future__ import annotations

import enum
import re
import signal
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, case, or_, select, update
from sqlalchemy.orm import Session

from backend.models import Experiment, Status, utcnow
from backend.service.runs import LeasedTable, lost_reason, rowcount, stale_running

#: The wait before re-sending an unclaimed row grows as ``requeue_after_seconds · 2^requeues`` up to
#: this many times ``requeue_after_seconds``.
MAX_REQUEUE_BACKOFF = 8


@dataclass(frozen=True)
class Orphan:
    """A running row whose worker stopped proving it is alive."""

    id: int
    attempts: int
    worker: str | None
    heartbeat_at: datetime | None


def find_orphans(
    session: Session, lease_seconds: float, *, now: datetime | None = None, table: LeasedTable = Experiment
) -> list[Orphan]:
    """Running rows whose heartbeat is older than ``lease_seconds`` (or missing), oldest first.

    Args:
        session: an open session.
        lease_seconds: how old a heartbeat may be.
        now: the current time. Default now.
        table: experiments (default) or crossover runs.
    """
    rows = session.execute(
        select(table.id, table.attempts, table.worker, table.heartbeat_at)
        .where(stale_running(now or utcnow(), lease_seconds, table))
        .order_by(table.id)
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
    table: LeasedTable = Experiment,
) -> OrphanFate:
    """Give an orphaned row back to the queue, or fail it when its attempts are used up.

    Conditional, like :func:`~backend.service.runs.claim`: only a row that is still running with a
    stale heartbeat changes. A re-queued row counts one more re-queue (``requeues``, ``requeued_at``).
    Enqueue the id *before* committing a ``requeued`` result: if the broker refuses, roll back and the
    row stays an orphan for the next sweep; if the commit fails after the send, the delivery still
    takes the stale row over.

    Args:
        session: the caller's session.
        experiment_id: an id from :func:`find_orphans` (of ``table``).
        lease_seconds: as in :func:`~backend.service.runs.claim`.
        max_attempts: as in :func:`~backend.service.runs.claim`.
        now: the current time. Default now.
        table: experiments (default) or crossover runs.

    Returns:
        What happened to the row.
    """
    now = now or utcnow()
    stale = and_(table.id == experiment_id, stale_running(now, lease_seconds, table))
    row = session.execute(select(table.attempts, table.last_loss).where(stale)).first()
    if row is None:
        return OrphanFate.gone
    attempts = int(row.attempts)
    if attempts >= max_attempts:
        done = session.execute(
            update(table)
            .where(stale, table.attempts == attempts)
            .values(
                status=Status.failed.value,
                error=lost_reason(attempts, max_attempts, row.last_loss),
                finished_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        return OrphanFate.failed if rowcount(done) else OrphanFate.gone
    done = session.execute(
        update(table)
        .where(stale, table.attempts == attempts)
        .values(status=Status.queued.value, requeues=table.requeues + 1, requeued_at=now)
        .execution_options(synchronize_session=False)
    )
    return OrphanFate.requeued if rowcount(done) else OrphanFate.gone


def _unclaimed(now: datetime, requeue_after_seconds: float, table: LeasedTable) -> ColumnElement[bool]:
    """A queued, uncancelled row that waited longer than its back-off since it was created or re-sent."""
    waited_since = case((table.requeued_at.is_(None), table.created_at), else_=table.requeued_at)
    clauses = [
        and_(table.requeues == n, waited_since < now - timedelta(seconds=requeue_after_seconds * 2**n))
        for n in range(MAX_REQUEUE_BACKOFF.bit_length() - 1)
    ]
    clauses.append(
        and_(
            table.requeues >= MAX_REQUEUE_BACKOFF.bit_length() - 1,
            waited_since < now - timedelta(seconds=requeue_after_seconds * MAX_REQUEUE_BACKOFF),
        )
    )
    return and_(table.status == Status.queued.value, table.cancel_requested.is_(False), or_(*clauses))


def find_unclaimed(
    session: Session,
    requeue_after_seconds: float,
    *,
    now: datetime | None = None,
    table: LeasedTable = Experiment,
) -> list[int]:
    """Queued rows no worker claimed for their back-off (see the module docstring), oldest first.

    Args:
        session: an open session.
        requeue_after_seconds: how long a queued row waits before its id is sent again (doubling with
            every re-send, up to :data:`MAX_REQUEUE_BACKOFF` times).
        now: the current time. Default now.
        table: experiments (default) or crossover runs.
    """
    now = now or utcnow()
    return list(
        session.scalars(
            select(table.id).where(_unclaimed(now, requeue_after_seconds, table)).order_by(table.id)
        )
    )


def mark_requeued(
    session: Session,
    row_id: int,
    requeue_after_seconds: float,
    *,
    now: datetime | None = None,
    table: LeasedTable = Experiment,
) -> bool:
    """Record that an unclaimed row's id is being sent again (``requeues`` + 1, ``requeued_at`` now).

    Conditional on the row still being unclaimed, so of two sweeps only one re-sends it and a row a
    worker claimed meanwhile is left alone. Send the id *before* committing, as for
    :func:`release_orphan`.

    Args:
        session: the caller's session.
        row_id: an id from :func:`find_unclaimed` (of ``table``).
        requeue_after_seconds: as in :func:`find_unclaimed`.
        now: the current time. Default now.
        table: experiments (default) or crossover runs.

    Returns:
        True when the row was marked (send its id); False when it is no longer unclaimed.
    """
    now = now or utcnow()
    done = session.execute(
        update(table)
        .where(table.id == row_id, _unclaimed(now, requeue_after_seconds, table))
        .values(requeues=table.requeues + 1, requeued_at=now)
        .execution_options(synchronize_session=False)
    )
    return rowcount(done) == 1


#: What a worker process killed by SIGKILL most often met (the kernel sends it when memory runs out).
OOM_HINT = "often the out-of-memory killer"
_SIGNAL = re.compile(r"signal (\d+)(?: \((SIG\w+)\))?")
_EXITCODE = re.compile(r"exitcode (-?\d+)")


def describe_loss(message: str) -> str:
    """How a worker process ended, in words, from the pool's message.

    Args:
        message: e.g. Celery's ``WorkerLostError`` text ``Worker exited prematurely: signal 9
            (SIGKILL) Job: 0.`` or ``... exitcode 1 Job: 0.``.

    Returns:
        ``killed by signal 9 SIGKILL, often the out-of-memory killer``, ``killed by signal 15
        SIGTERM``, ``exited with code 1``, or the message itself (cut to 200 characters) when it names
        neither.
    """
    killed = _SIGNAL.search(message)
    if killed:
        number = int(killed.group(1))
        name = killed.group(2) or _signal_name(number)
        text = f"killed by signal {number}" + (f" {name}" if name else "")
        return f"{text}, {OOM_HINT}" if number == signal.SIGKILL else text
    exited = _EXITCODE.search(message)
    if exited:
        return f"exited with code {exited.group(1)}"
    return message.strip()[:200]


def _signal_name(number: int) -> str | None:
    try:
        return signal.Signals(number).name
    except ValueError:
        return None


def record_lost_worker(
    session: Session,
    row_id: int,
    worker: str,
    loss: str,
    *,
    table: LeasedTable = Experiment,
) -> bool:
    """Store how the worker process running a row ended, and expire the row's heartbeat.

    Conditional on the row still running on that very worker (host/pid), so a row already taken over
    by another worker is left alone.

    Args:
        session: the caller's session.
        row_id: the experiment (or crossover run) the lost process was running.
        worker: the lost process as the claim recorded it (``host/pid``).
        loss: how it ended (:func:`describe_loss`), at most 200 characters kept.
        table: experiments (default) or crossover runs.

    Returns:
        True when the row was marked.
    """
    done = session.execute(
        update(table)
        .where(table.id == row_id, table.status == Status.running.value, table.worker == worker)
        .values(last_loss=loss[:200], heartbeat_at=None)
        .execution_options(synchronize_session=False)
    )
    return rowcount(done) == 1
