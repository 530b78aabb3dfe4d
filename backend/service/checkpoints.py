"""Where a resumed run starts, as the database holds it: the read side of ``recording``'s checkpoints.

Cycle k's record holds the pruned model it handed to cycle k + 1 (the experiment's only checkpoint
artifact). A new attempt needs that model, cycle 0's validation metric (the tolerance baseline), and
the count of rejected cycles in a row up to the checkpoint with the last accepted cycle before them and
its trained model (what ``pruning.backoff`` prunes again after another rejection). This module reads
them as bytes and numbers; ``worker/resume.py`` turns the bytes into models for the engine.
"""

from __future__ import annotations

import dataclasses

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.models import Artifact, ArtifactKind, Cycle


class CheckpointMissing(LookupError):
    """The database holds no checkpoint (or no cycle 0) to resume the experiment from."""


@dataclasses.dataclass(frozen=True)
class StoredCheckpoint:
    """The newest checkpoint of an experiment and what resuming from it needs.

    Attributes:
        cycle_index: the cycle whose pruned model it is; the run resumes at the next one.
        model: that pruned model's ``.keras`` bytes.
        baseline_metric: cycle 0's validation metric (NaN where it was not finite).
        rejections: rejected cycles in a row up to ``cycle_index``.
        kept_index, kept_model: the last accepted cycle before them and its trained model's bytes;
            None where there is none, or its trained model is not stored.
    """

    cycle_index: int
    model: bytes
    baseline_metric: float
    rejections: int
    kept_index: int | None
    kept_model: bytes | None


def latest_checkpoint(session: Session, experiment_id: int) -> StoredCheckpoint:
    """The newest checkpoint of an experiment.

    Raises:
        CheckpointMissing: there is no checkpoint, or no cycle 0 to take the baseline from.
    """
    checkpoint = session.scalars(
        select(Artifact)
        .where(Artifact.experiment_id == experiment_id, Artifact.kind == ArtifactKind.checkpoint.value)
        .order_by(Artifact.cycle_index.desc(), Artifact.id.desc())
        .limit(1)
    ).first()
    if checkpoint is None or checkpoint.cycle_index is None:
        raise CheckpointMissing(f"experiment {experiment_id} has no checkpoint to resume from")
    cycle_0 = session.execute(
        select(Cycle.val_metric).where(Cycle.experiment_id == experiment_id, Cycle.index == 0)
    ).first()
    if cycle_0 is None:
        raise CheckpointMissing(f"experiment {experiment_id} has no cycle 0 to take the baseline from")
    rejections, kept_index, kept_model = _since_kept(session, experiment_id, checkpoint.cycle_index)
    return StoredCheckpoint(
        cycle_index=checkpoint.cycle_index,
        model=checkpoint.content,
        baseline_metric=float("nan") if cycle_0[0] is None else float(cycle_0[0]),  # NULL: not finite
        rejections=rejections,
        kept_index=kept_index,
        kept_model=kept_model,
    )


def _since_kept(session: Session, experiment_id: int, through: int) -> tuple[int, int | None, bytes | None]:
    """The rejected cycles in a row up to cycle ``through``, and the last accepted cycle before them
    with its trained model's bytes (both None when that model is not stored)."""
    verdicts = session.execute(
        select(Cycle.index, Cycle.accepted)
        .where(Cycle.experiment_id == experiment_id, Cycle.index <= through)
        .order_by(Cycle.index.desc())
    ).all()
    rejections = 0
    for index, accepted in verdicts:
        if accepted:
            trained = session.scalars(
                select(Artifact.content)
                .where(
                    Artifact.experiment_id == experiment_id,
                    Artifact.kind == ArtifactKind.trained.value,
                    Artifact.cycle_index == index,
                )
                .order_by(Artifact.id.desc())
                .limit(1)
            ).first()
            if trained is None:
                return rejections, None, None
            return rejections, int(index), trained
        rejections += 1
    return rejections, None, None
