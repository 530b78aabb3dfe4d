"""A run's lease on the worker side: claim, heartbeat, cancel checks, fail, cancel (no TF).

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
the sweep of runs whose worker died is in ``backend.service.orphans``. Both build on the lease
helpers here (:func:`touch`, :func:`stale_running`, :func:`rowcount`, :func:`lost_reason`).

Crossover runs (``backend.service.crossover``) are leased the same way: the helpers that take a
``table`` (:func:`take`, :func:`settle_unclaimed`, :func:`stale_running`, :func:`touch`) work on any
:data:`LeasedTable`, and :class:`CrossoverLease` is the crossover's :class:`Lease`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import ColumnElement, CursorResult, and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from backend.models import Artifact, ArtifactKind, CrossoverRun, Cycle, EpochRow, Experiment, Status, utcnow

#: The tables whose rows a worker runs under a lease (``backend.models.LeasedRun``).
LeasedTable = type[Experiment] | type[CrossoverRun]

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

    @property
    def table(self) -> LeasedTable:
        """The table the leased row is in."""
        return Experiment

    @property
    def row_id(self) -> int:
        """The leased row's id."""
        return self.experiment_id


@dataclass(frozen=True)
class CrossoverLease:
    """A worker's ownership of one running crossover run (as :class:`Lease` for an experiment).

    Attributes:
        run_id: the crossover run.
        attempt: the ``attempts`` value the claim set; writes are refused once it changes.
        worker: who holds it (host/pid).
    """

    run_id: int
    attempt: int
    worker: str

    @property
    def table(self) -> LeasedTable:
        """The table the leased row is in."""
        return CrossoverRun

    @property
    def row_id(self) -> int:
        """The leased row's id."""
        return self.run_id


class RunLease(Protocol):
    """What every lease says: which row, and which attempt holds it."""

    @property
    def table(self) -> LeasedTable: ...

    @property
    def row_id(self) -> int: ...

    @property
    def attempt(self) -> int: ...


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


def request_cancel(session: Session, table: LeasedTable, row_id: int, **on_cancel: Any) -> bool:
    """Cancel a queued row at once, or ask a running one's worker to stop (``cancel_requested``).

    Two conditional UPDATEs, so a worker claiming at the same moment either finds the row cancelled or
    sees the request; asking twice is harmless. The caller commits.

    Args:
        session: the caller's session.
        table: ``Experiment`` or ``CrossoverRun``.
        row_id: the row.
        **on_cancel: more columns to set when a queued row is cancelled (e.g. a stop reason).

    Returns:
        False when the row is neither queued nor running (finished, or missing): nothing changed.
    """
    queued = session.execute(
        update(table)
        .where(table.id == row_id, table.status == Status.queued.value)
        .values(status=Status.cancelled.value, cancel_requested=True, finished_at=utcnow(), **on_cancel)
        .execution_options(synchronize_session=False)
    )
    if rowcount(queued) > 0:
        return True
    running = session.execute(
        update(table)
        .where(table.id == row_id, table.status == Status.running.value)
        .values(cancel_requested=True)
        .execution_options(synchronize_session=False)
    )
    return rowcount(running) > 0


def stale_running(
    now: datetime, lease_seconds: float, table: LeasedTable = Experiment
) -> ColumnElement[bool]:
    """A running row whose worker has not proven it is alive within the lease (a WHERE clause).

    Args:
        now: the current time.
        lease_seconds: how old a heartbeat may be.
        table: experiments (default) or crossover runs.
    """
    before = now - timedelta(seconds=lease_seconds)
    return and_(
        table.status == Status.running.value,
        or_(table.heartbeat_at.is_(None), table.heartbeat_at < before),
    )


def _owned(lease: RunLease) -> ColumnElement[bool]:
    table = lease.table
    return and_(
        table.id == lease.row_id,
        table.status == Status.running.value,
        table.attempts == lease.attempt,
    )


def _noun(table: LeasedTable) -> str:
    return "experiment" if table is Experiment else "crossover run"


def touch(session: Session, lease: RunLease, now: datetime, **values: Any) -> None:
    """Refresh the heartbeat (and set ``values``) on an owned row.

    Raises:
        LeaseLost: the row is no longer this lease's.
    """
    result = session.execute(
        update(lease.table)
        .where(_owned(lease))
        .values(heartbeat_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    if rowcount(result) != 1:
        raise LeaseLost(f"{_noun(lease.table)} {lease.row_id}: attempt {lease.attempt} no longer owns it")


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


def lost_reason(attempts: int, max_attempts: int, last_loss: str | None = None) -> str:
    """The error stored on a run failed because its workers died ``attempts`` times.

    Args:
        attempts: how many workers started it.
        max_attempts: the limit.
        last_loss: how the last worker process ended, when known (``LeasedRun.last_loss``).

    Returns:
        E.g. ``worker lost 3 times (last: killed by signal 9 SIGKILL, often the out-of-memory killer;
        max_attempts 3); giving up``.
    """
    times = "time" if attempts == 1 else "times"
    last = f"last: {last_loss}; " if last_loss else ""
    return f"worker lost {attempts} {times} ({last}max_attempts {max_attempts}); giving up"


def last_accepted(session: Session, experiment_id: int) -> int | None:
    """The index of the experiment's newest accepted cycle, or None when no cycle was accepted."""
    return session.scalar(
        select(func.max(Cycle.index)).where(Cycle.experiment_id == experiment_id, Cycle.accepted.is_(True))
    )


# --------------------------------------------------------------------------------------------- claim


def take(
    session: Session,
    table: LeasedTable,
    row_id: int,
    worker: str,
    lease_seconds: float,
    max_attempts: int,
    now: datetime,
) -> int | None:
    """The claim's one conditional UPDATE on any leased table.

    Moves the row to ``running`` (attempts + 1, heartbeat now, the worker recorded, the error cleared)
    when it is ``queued``, or ``running`` with a heartbeat older than ``lease_seconds``, and it is
    neither cancelled nor out of attempts.

    Args:
        session: the caller's session.
        table: experiments or crossover runs.
        row_id: the row.
        worker: who is claiming (host/pid).
        lease_seconds: how old a heartbeat may be before its worker is presumed dead.
        max_attempts: deliveries allowed to start the row.
        now: the current time.

    Returns:
        The attempt number this claim holds, or None when the row was not claimable.
    """
    claimable = or_(table.status == Status.queued.value, stale_running(now, lease_seconds, table))
    result = session.execute(
        update(table)
        .where(
            table.id == row_id,
            table.cancel_requested.is_(False),
            table.attempts < max_attempts,
            claimable,
        )
        .values(
            status=Status.running.value,
            attempts=table.attempts + 1,
            started_at=func.coalesce(table.started_at, now),
            heartbeat_at=now,
            worker=worker[:200],
            error=None,
        )
        .execution_options(synchronize_session=False)
    )
    if rowcount(result) != 1:
        return None
    return int(session.scalar(select(table.attempts).where(table.id == row_id)) or 0)


def settle_unclaimed(
    session: Session,
    table: LeasedTable,
    row_id: int,
    lease_seconds: float,
    max_attempts: int,
    now: datetime,
    **cancelled: Any,
) -> Claim:
    """Say why a row could not be claimed; finish a cancelled or exhausted row nobody is running.

    Both changes are conditional on the row still being idle (queued, or running with a stale
    heartbeat), so a live worker is never overruled.

    Args:
        session: the caller's session.
        table: experiments or crossover runs.
        row_id: the row :func:`take` refused.
        lease_seconds: as in :func:`take`.
        max_attempts: as in :func:`take`.
        now: the current time.
        **cancelled: extra columns set on a row cancelled here (an experiment's ``stop_reason``).

    Returns:
        ``skip`` (with the reason) or ``failed`` (with the stored error); never a lease.
    """
    noun = _noun(table)
    row = session.execute(
        select(table.status, table.cancel_requested, table.attempts, table.worker, table.last_loss).where(
            table.id == row_id
        )
    ).first()
    if row is None:
        return Claim(ClaimAction.skip, f"{noun} {row_id} does not exist")
    if Status(row.status).finished:
        return Claim(ClaimAction.skip, f"{noun} {row_id} is already {row.status}")
    claimable = or_(table.status == Status.queued.value, stale_running(now, lease_seconds, table))
    idle = and_(table.id == row_id, claimable)
    if row.cancel_requested:
        done = session.execute(
            update(table)
            .where(idle, table.cancel_requested.is_(True))
            .values(status=Status.cancelled.value, finished_at=now, **cancelled)
            .execution_options(synchronize_session=False)
        )
        if rowcount(done):
            return Claim(ClaimAction.skip, f"{noun} {row_id} was cancelled before it ran")
    elif row.attempts >= max_attempts:
        reason = lost_reason(int(row.attempts), max_attempts, row.last_loss)
        done = session.execute(
            update(table)
            .where(idle, table.attempts >= max_attempts)
            .values(status=Status.failed.value, error=reason, finished_at=now)
            .execution_options(synchronize_session=False)
        )
        if rowcount(done):
            return Claim(ClaimAction.failed, reason)
    return Claim(ClaimAction.skip, f"{noun} {row_id} is {row.status} on {row.worker or 'a worker'}")


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

    One conditional UPDATE (:func:`take`) moves the row to ``running`` (attempts + 1, heartbeat now)
    when it is ``queued``, or ``running`` with a heartbeat older than ``lease_seconds`` (its worker
    died), and it is neither cancelled nor out of attempts. Otherwise the row is left alone, except
    that a cancelled or exhausted row nobody is running is finished (``cancelled`` / ``failed``), again
    conditionally (:func:`settle_unclaimed`).

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
    attempt = take(session, Experiment, experiment_id, worker, lease_seconds, max_attempts, now)
    if attempt is not None:
        return _claimed(session, Lease(experiment_id=experiment_id, attempt=attempt, worker=worker))
    return settle_unclaimed(
        session, Experiment, experiment_id, lease_seconds, max_attempts, now, stop_reason="cancelled"
    )


def _claimed(session: Session, lease: Lease) -> Claim:
    experiment_id = lease.experiment_id
    spec = session.scalar(select(Experiment.spec).where(Experiment.id == experiment_id))
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
    return Claim(action=action, reason=reason, lease=lease, spec=dict(spec or {}), last_cycle=last)


# --------------------------------------------------------------------------------------------- running


def heartbeat(session: Session, lease: RunLease, *, now: datetime | None = None) -> bool:
    """Prove the worker holding ``lease`` (an experiment's or a crossover run's) is alive.

    Returns:
        True when the row is still this lease's; False when it was cancelled, finished or taken over.
    """
    try:
        touch(session, lease, now or utcnow())
    except LeaseLost:
        return False
    return True


def is_cancel_requested(session: Session, experiment_id: int, table: LeasedTable = Experiment) -> bool:
    """Whether someone asked the experiment (or the crossover run in ``table``) to stop (True also when
    the row is gone)."""
    requested = session.scalar(select(table.cancel_requested).where(table.id == experiment_id))
    return True if requested is None else bool(requested)


# --------------------------------------------------------------------------------------------- endings


def fail(session: Session, lease: RunLease, error: str, *, now: datetime | None = None) -> bool:
    """Mark the leased run failed; an experiment's recorded cycles stay readable.

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
