"""An experiment's lease on the worker side: claim, heartbeat, cancel checks, fail, cancel (no TF).

A worker owns a running experiment through a **lease**: the attempt number its claim produced. The
claim is one conditional UPDATE (``queued`` → ``running``, or a ``running`` row whose heartbeat is
older than the lease, i.e. a worker that died), so of two deliveries of one id exactly one runs it.
Every later write (heartbeat, epoch, cycle, finish) is again conditional on ``status = 'running'``
and ``attempts`` still being that attempt number: a worker that was presumed dead and replaced
finds its writes refused (:class:`LeaseLost`) instead of interleaving cycles with its successor.

Each function works inside the caller's session and never commits: the caller's session scope is
the transaction (so a cycle's row, its layer statistics, its model files and the experiment's
summary are committed together or not at all).

A crash after cycle k leaves cycle k's rows and the checkpoint (the pruned model handed to cycle
k + 1); the next claim says ``resume`` with ``next_cycle`` k + 1.

What a running experiment writes (epochs, cycles, its finish) is in ``backend.service.recording``;
the sweep of experiments whose worker died is in ``backend.service.orphans``. Both build on the
lease helpers here (:func:`touch`, :func:`stale_running`, :func:`rowcount`, :func:`lost_reason`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from backend.models import Artifact, ArtifactKind, Cycle, EpochRow, Experiment, Status, utcnow

#: The longest error message stored on an experiment (the rest is cut).
MAX_ERROR_CHARS = 4000


class LeaseLost(RuntimeError):
    """The worker no longer owns the experiment: cancelled, finished, or taken over (lease expired)."""


class ClaimAction(enum.StrEnum):
    """What a delivery of ``run_experiment`` should do after claiming."""

    fresh = "fresh"  # run from cycle 0
    resume = "resume"  # load the checkpoint and run from ``next_cycle``
    finish = "finish"  # every cycle was recorded before the last worker died; only finishing is left
    skip = "skip"  # nothing to do: duplicate delivery, cancelled, finished, running elsewhere, missing
    failed = "failed"  # attempts exhausted: the experiment is now failed


@dataclass(frozen=True)
class Lease:
    """A worker's ownership of one running experiment.

    Attributes:
        experiment_id: the experiment.
        attempt: the ``attempts`` value the claim set; writes are refused once it changes.
        worker: who holds it (host/pid), for the record.
    """

    experiment_id: int
    attempt: int
    worker: str


@dataclass(frozen=True)
class LastCycle:
    """The newest recorded cycle of an experiment (what a resumed attempt starts after).

    Attributes:
        index: its index.
        accepted: whether its validation metric stayed within the tolerance.
        has_checkpoint: whether the pruned model it handed on is stored (false when the run ended there).
    """

    index: int
    accepted: bool
    has_checkpoint: bool


@dataclass(frozen=True)
class Claim:
    """The outcome of :func:`claim`.

    Attributes:
        action: what to do.
        reason: why, in words (for the log; for ``failed`` it is the stored error).
        lease: the lease for ``fresh``, ``resume`` and ``finish``; None otherwise.
        spec: the experiment's stored spec (JSON) when there is a lease, else None.
        last_cycle: the newest recorded cycle, None when none is recorded.
    """

    action: ClaimAction
    reason: str
    lease: Lease | None = None
    spec: dict[str, Any] | None = None
    last_cycle: LastCycle | None = None

    @property
    def next_cycle(self) -> int:
        """The first cycle this attempt runs (0 when nothing is recorded)."""
        return 0 if self.last_cycle is None else self.last_cycle.index + 1


def rowcount(result: Any) -> int:
    """The number of rows a conditional UPDATE or DELETE changed (0 when its condition no longer held)."""
    return int(cast(CursorResult[Any], result).rowcount)


def stale_running(now: datetime, lease_seconds: float) -> ColumnElement[bool]:
    """A running row whose worker has not proven it is alive within the lease (a WHERE clause)."""
    before = now - timedelta(seconds=lease_seconds)
    return and_(
        Experiment.status == Status.running.value,
        or_(Experiment.heartbeat_at.is_(None), Experiment.heartbeat_at < before),
    )


def _owned(lease: Lease) -> ColumnElement[bool]:
    return and_(
        Experiment.id == lease.experiment_id,
        Experiment.status == Status.running.value,
        Experiment.attempts == lease.attempt,
    )


def touch(session: Session, lease: Lease, now: datetime, **values: Any) -> None:
    """Refresh the heartbeat (and set ``values``) on an owned row.

    Raises:
        LeaseLost: the row is no longer this lease's.
    """
    result = session.execute(
        update(Experiment)
        .where(_owned(lease))
        .values(heartbeat_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    if rowcount(result) != 1:
        raise LeaseLost(f"experiment {lease.experiment_id}: attempt {lease.attempt} no longer owns it")


def last_cycle(session: Session, experiment_id: int) -> LastCycle | None:
    """The newest recorded cycle of an experiment, or None when none is recorded."""
    row = session.execute(
        select(Cycle.index, Cycle.accepted)
        .where(Cycle.experiment_id == experiment_id)
        .order_by(Cycle.index.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    index, accepted = int(row[0]), bool(row[1])
    checkpoint = session.scalar(
        select(func.count(Artifact.id)).where(
            Artifact.experiment_id == experiment_id,
            Artifact.kind == ArtifactKind.checkpoint.value,
            Artifact.cycle_index == index,
        )
    )
    return LastCycle(index=index, accepted=accepted, has_checkpoint=bool(checkpoint))


def lost_reason(attempts: int, max_attempts: int) -> str:
    """The error stored on an experiment failed because its workers died ``attempts`` times."""
    times = "time" if attempts == 1 else "times"
    return f"worker lost {attempts} {times} (max_attempts {max_attempts}); giving up"


def last_accepted(session: Session, experiment_id: int) -> int | None:
    """The index of the experiment's newest accepted cycle, or None when no cycle was accepted."""
    return session.scalar(
        select(func.max(Cycle.index)).where(Cycle.experiment_id == experiment_id, Cycle.accepted.is_(True))
    )


# --------------------------------------------------------------------------------------------- claim


def claim(
    session: Session,
    experiment_id: int,
    worker: str,
    lease_seconds: float,
    max_attempts: int,
    *,
    now: datetime | None = None,
) -> Claim:
    """Take an experiment for this worker, or say why not.

    One conditional UPDATE moves the row to ``running`` (attempts + 1, heartbeat now) when it is
    ``queued``, or ``running`` with a heartbeat older than ``lease_seconds`` (its worker died), and it
    is neither cancelled nor out of attempts. Otherwise the row is left alone, except that a cancelled
    or exhausted row nobody is running is finished (``cancelled`` / ``failed``), again conditionally.

    Args:
        session: the caller's session (commit it to make the claim visible).
        experiment_id: the experiment the task was given.
        worker: who is claiming (host/pid), stored on the row.
        lease_seconds: how old a heartbeat may be before its worker is presumed dead.
        max_attempts: deliveries allowed to start the experiment.
        now: the current time. Default: now (UTC).

    Returns:
        The action: ``fresh``/``resume``/``finish`` with a lease, or ``skip``/``failed`` without.
    """
    now = now or utcnow()
    claimable = or_(Experiment.status == Status.queued.value, stale_running(now, lease_seconds))
    result = session.execute(
        update(Experiment)
        .where(
            Experiment.id == experiment_id,
            Experiment.cancel_requested.is_(False),
            Experiment.attempts < max_attempts,
            claimable,
        )
        .values(
            status=Status.running.value,
            attempts=Experiment.attempts + 1,
            started_at=func.coalesce(Experiment.started_at, now),
            heartbeat_at=now,
            worker=worker,
            error=None,
        )
        .execution_options(synchronize_session=False)
    )
    if rowcount(result) == 1:
        return _claimed(session, experiment_id, worker)
    return _unclaimed(session, experiment_id, lease_seconds, max_attempts, now, claimable)


def _claimed(session: Session, experiment_id: int, worker: str) -> Claim:
    row = session.execute(
        select(Experiment.attempts, Experiment.spec).where(Experiment.id == experiment_id)
    ).one()
    lease = Lease(experiment_id=experiment_id, attempt=int(row.attempts), worker=worker)
    last = last_cycle(session, experiment_id)
    next_cycle = 0 if last is None else last.index + 1
    # epochs of a cycle that never finished (a dead attempt's) are trained again from scratch
    session.execute(
        delete(EpochRow).where(EpochRow.experiment_id == experiment_id, EpochRow.cycle >= next_cycle)
    )
    if last is None:
        action, reason = ClaimAction.fresh, f"attempt {lease.attempt}: starting at cycle 0"
    elif last.has_checkpoint:
        action, reason = ClaimAction.resume, f"attempt {lease.attempt}: resuming at cycle {next_cycle}"
    else:
        action, reason = ClaimAction.finish, f"attempt {lease.attempt}: cycle {last.index} ended the run"
    return Claim(action=action, reason=reason, lease=lease, spec=dict(row.spec), last_cycle=last)


def _unclaimed(
    session: Session,
    experiment_id: int,
    lease_seconds: float,
    max_attempts: int,
    now: datetime,
    claimable: ColumnElement[bool],
) -> Claim:
    row = session.execute(
        select(Experiment.status, Experiment.cancel_requested, Experiment.attempts, Experiment.worker).where(
            Experiment.id == experiment_id
        )
    ).first()
    if row is None:
        return Claim(ClaimAction.skip, f"experiment {experiment_id} does not exist")
    if Status(row.status).finished:
        return Claim(ClaimAction.skip, f"experiment {experiment_id} is already {row.status}")
    idle = and_(Experiment.id == experiment_id, claimable)
    if row.cancel_requested:
        done = session.execute(
            update(Experiment)
            .where(idle, Experiment.cancel_requested.is_(True))
            .values(status=Status.cancelled.value, stop_reason="cancelled", finished_at=now)
            .execution_options(synchronize_session=False)
        )
        if rowcount(done):
            return Claim(ClaimAction.skip, f"experiment {experiment_id} was cancelled before it ran")
    elif row.attempts >= max_attempts:
        reason = lost_reason(int(row.attempts), max_attempts)
        done = session.execute(
            update(Experiment)
            .where(idle, Experiment.attempts >= max_attempts)
            .values(status=Status.failed.value, error=reason, finished_at=now)
            .execution_options(synchronize_session=False)
        )
        if rowcount(done):
            return Claim(ClaimAction.failed, reason)
    return Claim(
        ClaimAction.skip, f"experiment {experiment_id} is {row.status} on {row.worker or 'a worker'}"
    )


# --------------------------------------------------------------------------------------------- running


def heartbeat(session: Session, lease: Lease, *, now: datetime | None = None) -> bool:
    """Prove the worker holding ``lease`` is alive.

    Returns:
        True when the row is still this lease's; False when it was cancelled, finished or taken over.
    """
    try:
        touch(session, lease, now or utcnow())
    except LeaseLost:
        return False
    return True


def is_cancel_requested(session: Session, experiment_id: int) -> bool:
    """Whether someone asked the experiment to stop (True also when the row is gone)."""
    requested = session.scalar(select(Experiment.cancel_requested).where(Experiment.id == experiment_id))
    return True if requested is None else bool(requested)


# --------------------------------------------------------------------------------------------- endings


def fail(session: Session, lease: Lease, error: str, *, now: datetime | None = None) -> bool:
    """Mark the experiment failed; every recorded cycle stays readable.

    Returns:
        True when it was marked; False when the lease was already lost (nothing is written).
    """
    now = now or utcnow()
    try:
        touch(session, lease, now, status=Status.failed.value, error=error[:MAX_ERROR_CHARS], finished_at=now)
    except LeaseLost:
        return False
    return True


def mark_cancelled(session: Session, lease: Lease, *, now: datetime | None = None) -> bool:
    """Mark the experiment cancelled after its worker stopped (``final_cycle``: newest accepted cycle).

    Returns:
        True when it was marked; False when the lease was already lost (nothing is written).
    """
    now = now or utcnow()
    final = last_accepted(session, lease.experiment_id)
    try:
        touch(
            session,
            lease,
            now,
            status=Status.cancelled.value,
            stop_reason="cancelled",
            final_cycle=final,
            finished_at=now,
        )
    except LeaseLost:
        return False
    return True
