"""Validation during a cycle's training: how often and at which batch, set in the spec's training section."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest

from prunespec.spec import ExperimentSpec, TrainingSpec
from worker.engine.build import build_model
from worker.engine.cycle import _Run
from worker.engine.data import load_dataset
from worker.engine.results import NullReporter


def _spec(**training: Any) -> ExperimentSpec:
    return ExperimentSpec.model_validate(
        {
            "name": "tiny-sum",
            "seed": 3,
            "model": {
                "input_shape": [2],
                "layers": [
                    {"type": "dense", "name": "hidden", "units": 8, "activation": "relu"},
                    {"type": "dense", "name": "out", "units": 1},
                ],
            },
            "dataset": {"name": "sum", "train_samples": 400, "test_samples": 100},
            "training": {"batch_size": 100, "epochs": 5, "loss": "mse", **training},
            "pruning": {"criterion": "apoz"},
        }
    )


def _train(spec: ExperimentSpec) -> tuple[list[Any], list[int]]:
    """Cycle 0's epoch records, and the batch size of every evaluation ``fit`` and the callback ran."""
    keras.utils.set_random_seed(spec.seed)
    run = _Run(spec, load_dataset(spec.dataset, seed=spec.seed), NullReporter())
    model = build_model(spec.model, spec.training, run.prunable)
    batches: list[int] = []
    evaluate = model.evaluate

    def spy(*args: Any, **kwargs: Any) -> Any:
        batches.append(kwargs.get("batch_size"))
        return evaluate(*args, **kwargs)

    model.evaluate = spy
    return run.train(model, 0).records, batches


def test_an_old_training_section_keeps_validating_every_epoch_at_the_training_batch() -> None:
    training = TrainingSpec.model_validate({"batch_size": 64})
    assert training.validation_batch_size is None and training.validation_every == 1
    records, batches = _train(_spec())
    assert all(r.val_loss is not None and r.val_metric is not None for r in records)
    assert batches == [100] * 5


def test_validation_every_n_epochs_validates_those_and_always_the_last() -> None:
    records, batches = _train(_spec(validation_every=2, validation_batch_size=50))
    validated = [r.epoch for r in records if r.val_loss is not None]
    assert validated == [1, 3, 4]  # epochs 2 and 4 (Keras's validation_freq), then the last one
    assert batches == [50, 50, 50]
    assert all(np.isfinite(r.val_metric) for r in records if r.val_metric is not None)


def test_validation_fields_are_checked() -> None:
    with pytest.raises(ValueError, match="validation_every"):
        TrainingSpec.model_validate({"validation_every": 0})
    with pytest.raises(ValueError, match="validation_batch_size"):
        TrainingSpec.model_validate({"validation_batch_size": 0})
