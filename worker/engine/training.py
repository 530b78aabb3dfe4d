"""How a cycle trains: optimiser, loss, metric, snapshot freezing and the per-epoch progress callback."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from keras import ops

from prunespec.spec import TrainingSpec
from worker.engine.results import EpochRecord


@keras.saving.register_keras_serializable(package="prunelab")
def rmse(y_true: Any, y_pred: Any) -> Any:
    """Root mean squared error of a batch (Çallı's reconstruction loss)."""
    return ops.sqrt(ops.mean(ops.square(ops.cast(y_true, y_pred.dtype) - y_pred)) + 1e-12)


@dataclass(frozen=True)
class Objective:
    """Loss and metric of a run.

    Attributes:
        metric_name: "accuracy" (higher is better) or "rmse" (lower is better).
        one_hot: targets must be one-hot (the LLR head's independent sigmoids).
    """

    loss: Any
    metric_factory: Callable[[], keras.metrics.Metric]
    metric_name: str
    one_hot: bool

    @property
    def higher_is_better(self) -> bool:
        return self.metric_name == "accuracy"

    def worse_by(self, value: float, baseline: float) -> float:
        """How much worse ``value`` is than ``baseline`` (positive = worse)."""
        return baseline - value if self.higher_is_better else value - baseline


def objective(training: TrainingSpec) -> Objective:
    """The loss and metric a training recipe asks for."""
    if training.loss == "crossentropy":
        if training.head == "llr":
            return Objective(
                keras.losses.BinaryCrossentropy(from_logits=True),
                lambda: keras.metrics.CategoricalAccuracy(name="accuracy"),
                "accuracy",
                one_hot=True,
            )
        return Objective(
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            lambda: keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            "accuracy",
            one_hot=False,
        )
    loss: Any = rmse if training.loss == "rmse" else keras.losses.MeanSquaredError()
    return Objective(loss, lambda: keras.metrics.RootMeanSquaredError(name="rmse"), "rmse", one_hot=False)


def targets(y: np.ndarray, goal: Objective, num_classes: int | None) -> np.ndarray:
    """Targets in the form the loss expects (one-hot float32 for the LLR head)."""
    if goal.one_hot:
        if num_classes is None:
            raise ValueError("training.head 'llr' needs class labels")
        return np.eye(num_classes, dtype=np.float32)[np.asarray(y, dtype=np.int64)]
    return y


def optimizer(training: TrainingSpec, steps: int | None = None) -> keras.optimizers.Optimizer:
    """A fresh optimiser for one cycle (its state never carries across surgery).

    Args:
        training: the recipe.
        steps: optimiser steps in the cycle; with ``lr_schedule`` "cosine" the learning rate decays
            from ``learning_rate`` to 0 over them. Default None (constant rate).
    """
    rate: float | keras.optimizers.schedules.LearningRateSchedule = training.learning_rate
    if training.lr_schedule == "cosine" and steps:
        rate = keras.optimizers.schedules.CosineDecay(training.learning_rate, decay_steps=steps)
    if training.optimizer == "sgd":
        return keras.optimizers.SGD(rate)
    if training.optimizer == "momentum":
        return keras.optimizers.SGD(rate, momentum=training.momentum)
    if training.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(rate)
    return keras.optimizers.Adam(rate)


def freeze_kernels(model: keras.Model) -> None:
    """Snapshot fine-tuning (Liang et al.): only biases and BatchNorm parameters stay trainable."""
    for layer in model.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is not None:
            kernel.trainable = False


def compile_model(
    model: keras.Model, training: TrainingSpec, goal: Objective, steps: int | None = None
) -> None:
    """Compile for one cycle of ``steps`` optimiser steps (used by the learning-rate schedule)."""
    model.compile(optimizer=optimizer(training, steps), loss=goal.loss, metrics=[goal.metric_factory()])


@dataclass(frozen=True)
class Validation:
    """The held-out split a cycle validates on, and the batch it is evaluated at."""

    x: np.ndarray
    y: np.ndarray
    batch_size: int


class EpochProgress(keras.callbacks.Callback):
    """Sends an EpochRecord after every epoch and stops training when the run is cancelled.

    Args:
        cycle: the cycle index.
        epochs: epochs this cycle trains.
        metric_name: the key of the metric in Keras's logs.
        on_epoch: receives each record.
        cancelled: polled after every epoch; True stops training after that epoch.
        validation: evaluated after the last epoch when Keras's ``validation_freq`` skipped it, so a
            cycle's last record always has validation numbers. Default None (``fit`` validates every
            epoch itself).
    """

    def __init__(
        self,
        cycle: int,
        epochs: int,
        metric_name: str,
        on_epoch: Callable[[EpochRecord], None],
        cancelled: Callable[[], bool],
        validation: Validation | None = None,
    ):
        super().__init__()
        self.cycle = cycle
        self.epochs = epochs
        self.metric_name = metric_name
        self.on_epoch = on_epoch
        self.cancelled = cancelled
        self.validation = validation
        self.records: list[EpochRecord] = []
        self.was_cancelled = False
        self._started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = dict(logs or {})
        seconds = time.perf_counter() - self._started
        if self.validation is not None and epoch == self.epochs - 1 and "val_loss" not in logs:
            held_out = self.model.evaluate(
                self.validation.x,
                self.validation.y,
                batch_size=self.validation.batch_size,
                verbose=0,
                return_dict=True,
            )
            logs.update({f"val_{key}": value for key, value in held_out.items()})
        val_loss = logs.get("val_loss")
        val_metric = logs.get(f"val_{self.metric_name}")
        record = EpochRecord(
            cycle=self.cycle,
            epoch=epoch,
            epochs=self.epochs,
            loss=float(logs.get("loss", float("nan"))),
            metric=float(logs.get(self.metric_name, float("nan"))),
            val_loss=None if val_loss is None else float(val_loss),
            val_metric=None if val_metric is None else float(val_metric),
            seconds=seconds,
        )
        self.records.append(record)
        self.on_epoch(record)
        if self.cancelled():
            self.was_cancelled = True
            self.model.stop_training = True
