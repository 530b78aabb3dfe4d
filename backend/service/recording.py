"""What a running experiment writes on the worker side: versions, epochs, cycles, its finish (no TF).

Every write refreshes the heartbeat and is conditional on the worker's lease
(``backend.service.runs``): once the lease is lost it raises ``LeaseLost`` and writes nothing.
Each function works inside the caller's session and never commits: the caller's session scope is
the transaction (so a cycle's row, its layer statistics, its model files and the experiment's
summary are committed together or not at all).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, delete, insert, literal, or_, select
from sqlalchemy.orm import Session

from backend.models import Artifact, ArtifactKind, Cycle, EpochRow, Experiment, Status, Timestamp, utcnow
from backend.progress import ProgressDetail
from backend.service.runs import LastCycle, Lease, last_accepted, touch
from prunespec.stops import StopReason

#: What a stored model file is.
KERAS_MEDIA_TYPE = "application/x-keras"


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


def record_versions(session: Session, lease: Lease, tf_version: str, keras_version: str) -> None:
    """Store the library versions the run uses.

    Raises:
        LeaseLost: the row is no longer this lease's.
    """
    touch(session, lease, utcnow(), tf_version=tf_version[:32], keras_version=keras_version[:32])


def record_epoch(
    session: Session,
    lease: Lease,
    values: EpochValues,
    *,
    progress: float,
    progress_detail: ProgressDetail,
    now: datetime | None = None,
) -> None:
    """Store one epoch and the live progress, replacing an earlier row for the same (cycle, epoch).

    Args:
        session: the caller's session (one transaction with the progress update).
        lease: the worker's lease.
        values: the epoch.
        progress: fraction of the planned epochs done, clipped to [0, 1].
        progress_detail: the latest epoch's progress.
        now: the current time. Default now.

    Raises:
        LeaseLost: the row is no longer this lease's (nothing is written).
    """
    now = now or utcnow()
    touch(
        session, lease, now, progress=min(max(progress, 0.0), 1.0), progress_detail=progress_detail.stored()
    )
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
    trained: ModelFile | None,
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
        trained: the model the cycle trained; None when there is none to store (an imported local run).
        checkpoint: the pruned model handed to the next cycle, None when the run ends with this cycle.
        higher_is_better: the direction of the metric (for ``best_metric``).
        now: the current time. Default now.

    Raises:
        LeaseLost: the row is no longer this lease's (nothing is written).
    """
    now = now or utcnow()
    experiment_id = lease.experiment_id
    touch(session, lease, now)
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
    if trained is not None:
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


def recorded_stop_reason(last: LastCycle, max_cycles: int) -> StopReason:
    """Why a run whose newest cycle handed on no checkpoint stopped (mirrors ``engine.cycle``).

    Args:
        last: the newest recorded cycle (``has_checkpoint`` False).
        max_cycles: the spec's ``pruning.max_cycles``.

    Returns:
        ``tolerance`` when that cycle was rejected (a rejected cycle that backs off hands on a
        checkpoint, so here no retry was left), ``max_cycles`` when it was the last allowed one,
        else ``nothing_removed``.
    """
    if not last.accepted:
        return StopReason.tolerance
    return StopReason.max_cycles if last.index >= max_cycles - 1 else StopReason.nothing_removed


def finish(
    session: Session,
    lease: Lease,
    stop_reason: str,
    final_cycle: int | None = None,
    *,
    now: datetime | None = None,
    with_model: bool = True,
) -> None:
    """Mark the experiment succeeded and store its final model (a copy of that cycle's trained model).

    Args:
        session: the caller's session.
        lease: the worker's lease.
        stop_reason: why the cycles stopped (the engine's ``stop_reason``).
        final_cycle: the cycle whose model is the result. Default: the newest accepted cycle.
        now: the current time. Default now.
        with_model: copy the final cycle's trained model as the result. Default True; False for a run
            recorded without model files (an imported local run).

    Raises:
        LeaseLost: the row is no longer this lease's (nothing is written).
        ValueError: no accepted cycle is recorded, so there is no result.
    """
    now = now or utcnow()
    experiment_id = lease.experiment_id
    final = final_cycle if final_cycle is not None else last_accepted(session, experiment_id)
    if final is None:
        raise ValueError(f"experiment {experiment_id} has no accepted cycle to finish with")
    touch(
        session,
        lease,
        now,
        status=Status.succeeded.value,
        stop_reason=stop_reason[:32],
        final_cycle=final,
        progress=1.0,
        finished_at=now,
    )
    if not with_model:
        return
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
