"""Where a resumed run starts: the latest checkpoint in the database, as the engine's ``ResumePoint``.

``backend.service.checkpoints`` reads the checkpoint (cycle k's pruned model, handed to cycle k + 1),
cycle 0's validation metric and the last accepted cycle's trained model with the rejections since;
this module loads the models and reads their architecture back from the layers, so the engine
continues exactly where the dead worker would have. Imports Keras: import this module only inside the
task body.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import keras
from sqlalchemy.orm import Session

import worker.engine.training  # noqa: F401 - registers the rmse metric (build.py: the kernel penalty)
from backend.service.checkpoints import CheckpointMissing, latest_checkpoint
from worker.engine.build import model_to_spec
from worker.engine.cycle import Kept, ResumePoint

__all__ = ["CheckpointMissing", "model_from_bytes", "resume_point"]


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
        ``ResumePoint`` at the checkpoint's cycle + 1, with the pruned model, its spec, cycle 0's
        validation metric, and the last accepted cycle's trained model with the rejections since.

    Raises:
        CheckpointMissing: there is no checkpoint, or no cycle 0 to take the baseline from.
    """
    stored = latest_checkpoint(session, experiment_id)
    model = model_from_bytes(stored.model)
    kept = None
    if stored.kept_index is not None and stored.kept_model is not None:
        kept_model = model_from_bytes(stored.kept_model)
        kept = Kept(stored.kept_index, kept_model, model_to_spec(kept_model))
    return ResumePoint(
        cycle=stored.cycle_index + 1,
        model=model,
        spec=model_to_spec(model),
        baseline_metric=stored.baseline_metric,
        kept=kept,
        rejections=stored.rejections,
    )
