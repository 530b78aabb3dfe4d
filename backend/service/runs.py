"""An experiment's life on the worker side: claim, heartbeat, record, finish (pure SQLAlchemy, no TF).

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
"""

from __future__ import annotations

import enum
import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, and_, delete, func, insert, literal, or_, select, update
from sqlalchemy.orm import Session

from backend.models import Artifact, ArtifactKind, Cycle, EpochRow, Experiment, Status, Timestamp, utcnow

#: The longest error message stored on an experiment (the rest is cut).
MAX_ERROR_CHARS = 4000
#: What a stored model file is.
KERAS_MEDIA_TYPE = "application/x-keras"


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


@dataclass(frozen=True)
class ModelFile:
    """A serialized model to store as an artifact.

    Attributes:
        filename: e.g. ``cycle-3-trained.keras``.
        content: the file's bytes.
        media_type: default ``application/x-keras``.
    """

    filename: str
    content: bytes
    media_type: str = KERAS_MEDIA_TYPE


@dataclass(frozen=True)
class EpochValues:
    """One finished training epoch, as the worker reports it.

    Attributes:
        cycle, epoch: where it belongs (0-based).
        loss, metric: training values (None when not finite).
        val_loss, val_metric: validation values, None when there were none.
        seconds: wall time of the epoch.
    """

    cycle: int
    epoch: int
    loss: float | None
    metric: float | None
    val_loss: float | None
    val_metric: float | None
    seconds: float


def _rowcount(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount)


def _stale(now: datetime, lease_seconds: float) -> ColumnElement[bool]:
    """A running row whose worker has not proven it is alive within the lease."""
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


def _touch(session: Session, lease: Lease, now: datetime, **values: Any) -> None:
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
    if _rowcount(result) != 1:
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


def _lost_reason(attempts: int, max_attempts: int) -> str:
    times = "time" if attempts == 1 else "times"
    return f"worker lost {attempts} {times} (max_attempts {max_attempts}); giving up"


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
    claimable = or_(Experiment.status == Status.queued.value, _stale(now, lease_seconds))
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
    if _rowcount(result) == 1:
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
        if _rowcount(done):
            return Claim(ClaimAction.skip, f"experiment {experiment_id} was cancelled before it ran")
    elif row.attempts >= max_attempts:
        reason = _lost_reason(int(row.attempts), max_attempts)
        done = session.execute(
            update(Experiment)
            .where(idle, Experiment.attempts >= max_attempts)
            .values(status=Status.failed.value, error=reason, finished_at=now)
            .execution_options(synchronize_session=False)
        )
        if _rowcount(done):
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
        _touch(session, lease, now or utcnow())
    except LeaseLost:
        return False
    return True


def is_cancel_requested(session: Session, experiment_id: int) -> bool:
    """Whether someone asked the experiment to stop (True also when the row is gone)."""
    requested = session.scalar(select(Experiment.cancel_requested).where(Experiment.id == experiment_id))
    return True if requested is None else bool(requested)


def record_versions(session: Session, lease: Lease, tf_version: str, keras_version: str) -> None:
    """Store the library versions the run uses.

    Raises:
        LeaseLost: the row is no longer this lease's.
    """
    _touch(session, lease, utcnow(), tf_version=tf_version[:32], keras_version=keras_version[:32])


def record_epoch(
    session: Session,
    lease: Lease,
    values: EpochValues,
    *,
    progress: float,
    progress_detail: dict[str, Any],
    now: datetime | None = None,
) -> None:
    """Store one epoch and the live progress, replacing an earlier row for the same (cycle, epoch).

    Args:
        session: the caller's session (one transaction with the progress update).
        lease: the worker's lease.
        values: the epoch.
        progress: fraction of the planned epochs done, clipped to [0, 1].
        progress_detail: JSON-ready numbers of the latest epoch (finite floats only).
        now: the current time. Default now.

    Raises:
        LeaseLost: the row is no longer this lease's (nothing is written).
    """
    now = now or utcnow()
    _touch(session, lease, now, progress=min(max(progress, 0.0), 1.0), progress_detail=progress_detail)
    row = session.scalars(
        select(EpochRow).where(
            EpochRow.experiment_id == lease.experiment_id,
            EpochRow.cycle == values.cycle,
            EpochRow.epoch == values.epoch,
        )
    ).first()
    if row is None:
        row = EpochRow(experiment_id=lease.experiment_id, cycle=values.cycle, epoch=values.epoch)
        session.add(row)
    row.loss, row.metric = values.loss, values.metric
    row.val_loss, row.val_metric = values.val_loss, values.val_metric
    row.seconds, row.created_at = values.seconds, now
    session.flush()


def _artifact(experiment_id: int, cycle_index: int, kind: ArtifactKind, file: ModelFile) -> Artifact:
    return Artifact(
        experiment_id=experiment_id,
        cycle_index=cycle_index,
        kind=kind.value,
        filename=file.filename,
        media_type=file.media_type,
        size_bytes=len(file.content),
        sha256=hashlib.sha256(file.content).hexdigest(),
        content=file.content,
    )


def _better(value: float | None, best: float | None, higher_is_better: bool) -> float | None:
    """The better of two metrics; a missing or non-finite one never wins."""
    if value is None or not math.isfinite(value):
        return best
    if best is None or not math.isfinite(best):
        return value
    return max(value, best) if higher_is_better else min(value, best)


def record_cycle(
    session: Session,
    lease: Lease,
    cycle: Cycle,
    trained: ModelFile,
    checkpoint: ModelFile | None,
    *,
    higher_is_better: bool,
    now: datetime | None = None,
) -> None:
    """Store a finished cycle: its row and layer statistics, its models, and the experiment's summary.

    Everything goes into the caller's transaction. The checkpoint (the pruned model for the next
    cycle) replaces the experiment's previous one; a cycle recorded again replaces the earlier record.

    Args:
        session: the caller's session.
        lease: the worker's lease.
        cycle: the unsaved cycle row with its ``layers``; its ``experiment_id`` is set here.
        trained: the model the cycle trained.
        checkpoint: the pruned model handed to the next cycle, None when the run ends with this cycle.
        higher_is_better: the direction of the metric (for ``best_metric``).
        now: the current time. Default now.

    Raises:
        LeaseLost: the row is no longer this lease's (nothing is written).
    """
    now = now or utcnow()
    experiment_id = lease.experiment_id
    _touch(session, lease, now)
    session.execute(delete(Cycle).where(Cycle.experiment_id == experiment_id, Cycle.index == cycle.index))
    session.execute(
        delete(Artifact).where(
            Artifact.experiment_id == experiment_id,
            or_(
                and_(Artifact.kind == ArtifactKind.trained.value, Artifact.cycle_index == cycle.index),
                Artifact.kind == ArtifactKind.checkpoint.value,
            ),
        )
    )
    cycle.experiment_id = experiment_id
    session.add(cycle)
    session.add(_artifact(experiment_id, cycle.index, ArtifactKind.trained, trained))
    if checkpoint is not None:
        session.add(_artifact(experiment_id, cycle.index, ArtifactKind.checkpoint, checkpoint))

    experiment = session.get_one(Experiment, experiment_id)
    session.refresh(experiment)
    experiment.cycles_done = cycle.index + 1
    experiment.metric_name = cycle.metric_name
    if cycle.index == 0:
        experiment.initial_params, experiment.initial_flops = cycle.params, cycle.flops
    if cycle.accepted:
        experiment.final_params, experiment.final_flops = cycle.params, cycle.flops
        experiment.final_widths = dict(cycle.widths)
        experiment.final_metric = cycle.val_metric
        experiment.best_metric = _better(cycle.val_metric, experiment.best_metric, higher_is_better)
    session.flush()


# --------------------------------------------------------------------------------------------- endings


def _last_accepted(session: Session, experiment_id: int) -> int | None:
    return session.scalar(
        select(func.max(Cycle.index)).where(Cycle.experiment_id == experiment_id, Cycle.accepted.is_(True))
    )


def recorded_stop_reason(last: LastCycle, max_cycles: int) -> str:
    """Why a run whose newest cycle handed on no checkpoint stopped (mirrors ``engine.cycle``).

    Args:
        last: the newest recorded cycle (``has_checkpoint`` False).
        max_cycles: the spec's ``pruning.max_cycles``.

    Returns:
        ``tolerance`` when that cycle was rejected, ``max_cycles`` when it was the last allowed one,
        else ``nothing_removed``.
    """
    if not last.accepted:
        return "tolerance"
    return "max_cycles" if last.index >= max_cycles - 1 else "nothing_removed"


def finish(
    session: Session,
    lease: Lease,
    stop_reason: str,
    final_cycle: int | None = None,
    *,
    now: datetime | None = None,
) -> None:
    """Mark the experiment succeeded and store its final model (a copy of that cycle's trained model).

    Args:
        session: the caller's session.
        lease: the worker's lease.
        stop_reason: why the cycles stopped (the engine's ``stop_reason``).
        final_cycle: the cycle whose model is the result. Default: the newest accepted cycle.
        now: the current time. Default now.

    Raises:
        LeaseLost: the row is no longer this lease's (nothing is written).
        ValueError: no accepted cycle is recorded, so there is no result.
    """
    now = now or utcnow()
    experiment_id = lease.experiment_id
    final = final_cycle if final_cycle is not None else _last_accepted(session, experiment_id)
    if final is None:
        raise ValueError(f"experiment {experiment_id} has no accepted cycle to finish with")
    _touch(
        session,
        lease,
        now,
        status=Status.succeeded.value,
        stop_reason=stop_reason[:32],
        final_cycle=final,
        progress=1.0,
        finished_at=now,
    )
    session.execute(
        delete(Artifact).where(
            Artifact.experiment_id == experiment_id, Artifact.kind == ArtifactKind.final.value
        )
    )
    trained = (
        select(
            Artifact.experiment_id,
            Artifact.cycle_index,
            literal(ArtifactKind.final.value),
            literal("final.keras"),
            Artifact.media_type,
            Artifact.size_bytes,
            Artifact.sha256,
            Artifact.content,
            literal(now, Timestamp),
        )
        .where(
            Artifact.experiment_id == experiment_id,
            Artifact.kind == ArtifactKind.trained.value,
            Artifact.cycle_index == final,
        )
        .limit(1)
    )
    copied = session.scalar(
        insert(Artifact)
        .from_select(
            [
                "experiment_id",
                "cycle_index",
                "kind",
                "filename",
                "media_type",
                "size_bytes",
                "sha256",
                "content",
                "created_at",
            ],
            trained,
        )
        .returning(Artifact.id)
    )
    if copied is None:
        raise ValueError(f"experiment {experiment_id}: cycle {final} has no trained model to finish with")


def fail(session: Session, lease: Lease, error: str, *, now: datetime | None = None) -> bool:
    """Mark the experiment failed; every recorded cycle stays readable.

    Returns:
        True when it was marked; False when the lease was already lost (nothing is written).
    """
    now = now or utcnow()
    try:
        _touch(
            session, lease, now, status=Status.failed.value, error=error[:MAX_ERROR_CHARS], finished_at=now
        )
    except LeaseLost:
        return False
    return True


def mark_cancelled(session: Session, lease: Lease, *, now: datetime | None = None) -> bool:
    """Mark the experiment cancelled after its worker stopped (``final_cycle``: newest accepted cycle).

    Returns:
        True when it was marked; False when the lease was already lost (nothing is written).
    """
    now = now or utcnow()
    final = _last_accepted(session, lease.experiment_id)
    try:
        _touch(
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


# --------------------------------------------------------------------------------------------- orphans


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
        .where(_stale(now or utcnow(), lease_seconds))
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

    Conditional, like :func:`claim`: only a row that is still running with a stale heartbeat changes.
    Enqueue the id *before* committing a ``requeued`` result: if the broker refuses, roll back and the
    row stays an orphan for the next sweep; if the commit fails after the send, the delivery still
    takes the stale row over.

    Args:
        session: the caller's session.
        experiment_id: an id from :func:`find_orphans`.
        lease_seconds: as in :func:`claim`.
        max_attempts: as in :func:`claim`.
        now: the current time. Default now.

    Returns:
        What happened to the row.
    """
    now = now or utcnow()
    stale = and_(Experiment.id == experiment_id, _stale(now, lease_seconds))
    attempts = session.scalar(select(Experiment.attempts).where(stale))
    if attempts is None:
        return OrphanFate.gone
    if attempts >= max_attempts:
        done = session.execute(
            update(Experiment)
            .where(stale, Experiment.attempts == attempts)
            .values(status=Status.failed.value, error=_lost_reason(attempts, max_attempts), finished_at=now)
            .execution_options(synchronize_session=False)
        )
        return OrphanFate.failed if _rowcount(done) else OrphanFate.gone
    done = session.execute(
        update(Experiment)
        .where(stale, Experiment.attempts == attempts)
        .values(status=Status.queued.value)
        .execution_options(synchronize_session=False)
    )
    return OrphanFate.requeued if _rowcount(done) else OrphanFate.gone
