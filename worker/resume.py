"""Where a resumed run starts: the latest checkpoint in the database, as the engine's ``ResumePoint``.

Cycle k's record holds the pruned model it handed to cycle k + 1 (the experiment's only checkpoint
artifact). A new attempt loads it, reads its architecture back from the layers, takes cycle 0's
validation metric as the tolerance baseline, and loads the last accepted cycle's trained model with the
count of rejected cycles since (what ``pruning.backoff`` prunes again after another rejection), so the
engine continues exactly where the dead worker would have. Imports Keras: import this module only
inside the task body.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import keras
from sqlalchemy import select
from sqlalchemy.orm import Session

import worker.engine.training  # noqa: F401 - registers the rmse metric (build.py: the kernel penalty)
from backend.models import Artifact, ArtifactKind, Cycle
from worker.engine.build import model_to_spec
from worker.engine.cycle import Kept, ResumePoint


class CheckpointMissing(LookupError):
    """The database holds no checkpoint (or no cycle 0) to resume the experiment from."""


def model_from_bytes(content: bytes) -> keras.Model:
    """A model from the bytes of a ``.keras`` file, not compiled (the engine compiles every cycle).

    Args:
        content: what ``worker.recorder.model_bytes`` produced.

    Returns:
        The model, with prunelab's custom objects resolved.
    """
    with tempfile.TemporaryDirectory(prefix="prunelab-model-") as directory:
        path = Path(directory) / "model.keras"
        path.write_bytes(content)
        return keras.models.load_model(path, compile=False)


def resume_point(session: Session, experiment_id: int) -> ResumePoint:
    """The engine's starting point after the newest recorded cycle.

    Args:
        session: a session on the experiment's database.
        experiment_id: the experiment.

    Returns:
        ``ResumePoint`` at the checkpoint's cycle + 1, with the pruned model, its spec and cycle 0's
        validation metric.

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
    baseline = float("nan") if cycle_0[0] is None else float(cycle_0[0])  # NULL: it was not finite
    model = model_from_bytes(checkpoint.content)
    rejections, kept = _since_kept(session, experiment_id, checkpoint.cycle_index)
    return ResumePoint(
        cycle=checkpoint.cycle_index + 1,
        model=model,
        spec=model_to_spec(model),
        baseline_metric=baseline,
        kept=kept,
        rejections=rejections,
    )


def _since_kept(session: Session, experiment_id: int, through: int) -> tuple[int, Kept | None]:
    """The rejected cycles in a row up to cycle ``through``, and the last accepted cycle before them
    with its trained model (None when that model is not stored)."""
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
                return rejections, None
            kept_model = model_from_bytes(trained)
            return rejections, Kept(int(index), kept_model, model_to_spec(kept_model))
        rejections += 1
    return rejections, None
