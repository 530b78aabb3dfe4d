"""Connection pruning: zero a layer's smallest-magnitude weights and fine-tune with the zeros kept.

Beside unit pruning (which removes whole units and shrinks the model), this removes individual
connections: the model keeps its shape, a fraction of every chosen kernel becomes exactly zero, and
fine-tuning updates only the surviving weights. The zeros only save time where a sparse kernel beats
the dense one (see ``sparse_bench``) and only save bits in a sparse storage format (see
``bits.stored_bits``).

A kernel's mask is kept during training by a Keras constraint, which the optimiser applies after every
update, so a pruned weight is exactly zero after every step whatever the optimiser's momentum.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from prunespec.spec import TrainingSpec
from worker.engine.training import compile_model, freeze_kernels, objective

WEIGHTED_LAYERS = (keras.layers.Dense, keras.layers.Conv2D, keras.layers.Conv2DTranspose)


class KeepMasked(keras.constraints.Constraint):
    """Multiplies a kernel by a fixed 0/1 mask after every optimiser step.

    Args:
        mask: same shape as the kernel; 1 keeps a weight, 0 holds it at zero.
    """

    def __init__(self, mask: np.ndarray):
        self.mask = np.asarray(mask, dtype=np.float32)

    def __call__(self, w: object) -> object:
        return ops.multiply(w, ops.cast(self.mask, "float32"))


@dataclass(frozen=True)
class ConnectionPruning:
    """Outcome of magnitude connection pruning.

    Attributes:
        model: the pruned, fine-tuned model (the same object that was passed in).
        masks: per layer, a boolean array shaped like its kernel; True marks a kept weight.
        target: the sparsity asked for per layer.
        sparsity: the fraction of each pruned kernel's weights that is exactly zero after fine-tuning.
        history: Keras's per-epoch logs of the fine-tuning (empty when it trained no epochs).
    """

    model: keras.Model
    masks: dict[str, np.ndarray]
    target: dict[str, float]
    sparsity: dict[str, float]
    history: dict[str, list[float]]


def weighted_layer_names(model: keras.Model) -> list[str]:
    """Names of the model's dense, conv2d and conv2d_transpose layers, in order."""
    return [layer.name for layer in model.layers if isinstance(layer, WEIGHTED_LAYERS)]


def _targets(model: keras.Model, sparsity: float | Mapping[str, float]) -> dict[str, float]:
    names = weighted_layer_names(model)
    targets = dict.fromkeys(names, float(sparsity)) if isinstance(sparsity, int | float) else dict(sparsity)
    unknown = sorted(set(targets) - set(names))
    if unknown:
        raise ValueError(f"{unknown} are not weighted layers; weighted layers: {names}")
    for name, value in targets.items():
        if not 0.0 <= value < 1.0:
            raise ValueError(f"layer '{name}': target sparsity must be in [0, 1), got {value}")
    return targets


def magnitude_mask(kernel: np.ndarray, sparsity: float) -> np.ndarray:
    """Keep-mask that drops the ``round(sparsity * size)`` smallest-magnitude weights of a kernel.

    Ties are broken by position (earlier weights go first), so the count removed is exact.

    Args:
        kernel: the weights.
        sparsity: the fraction to remove, in [0, 1).

    Returns:
        A boolean array shaped like ``kernel``; True marks a kept weight.
    """
    flat = np.abs(np.asarray(kernel)).ravel()
    remove = int(round(sparsity * flat.size))
    keep = np.ones(flat.size, dtype=bool)
    keep[np.argsort(flat, kind="stable")[:remove]] = False
    return keep.reshape(np.shape(kernel))


def magnitude_masks(model: keras.Model, sparsity: float | Mapping[str, float]) -> dict[str, np.ndarray]:
    """Keep-masks for the chosen layers' kernels (:func:`magnitude_mask` per layer).

    Args:
        model: a Keras model.
        sparsity: one target for every weighted layer, or targets by layer name.

    Returns:
        Masks by layer name.

    Raises:
        ValueError: a name is not a weighted layer, or a target lies outside [0, 1).
    """
    targets = _targets(model, sparsity)
    return {name: magnitude_mask(model.get_layer(name).kernel.numpy(), s) for name, s in targets.items()}


def apply_masks(model: keras.Model, masks: Mapping[str, np.ndarray]) -> None:
    """Zero every masked-out kernel weight in place (biases are untouched)."""
    for name, mask in masks.items():
        kernel = model.get_layer(name).kernel
        kernel.assign(kernel.numpy() * mask)


def kernel_sparsity(model: keras.Model, layers: list[str] | None = None) -> dict[str, float]:
    """Fraction of exactly-zero weights in each kernel.

    Args:
        model: a Keras model.
        layers: layer names. Default: every weighted layer.

    Returns:
        Sparsity in [0, 1] by layer name.
    """
    names = weighted_layer_names(model) if layers is None else layers
    out: dict[str, float] = {}
    for name in names:
        kernel = model.get_layer(name).kernel.numpy()
        out[name] = float(np.count_nonzero(kernel == 0)) / kernel.size
    return out


def prune_connections(
    model: keras.Model,
    sparsity: float | Mapping[str, float],
    x: np.ndarray,
    y: np.ndarray,
    training: TrainingSpec,
    *,
    epochs: int | None = None,
    snapshot: bool = False,
) -> ConnectionPruning:
    """Zero the smallest weights of each chosen kernel, then fine-tune with the zeros held at zero.

    Args:
        model: a trained Keras model; changed in place (and recompiled).
        sparsity: one target for every weighted layer (the output layer included), or targets by layer
            name (other layers are left dense).
        x: training inputs.
        y: training targets in the form the loss expects (see ``training.targets``).
        training: optimiser, loss, batch size and epochs of the fine-tuning.
        epochs: fine-tuning epochs. Default ``training.epochs``; 0 skips fine-tuning.
        snapshot: fine-tune only biases and batch norm, kernels frozen (Liang et al.'s snapshot
            pruning); the kernels' trainable flags are restored afterwards. Default False.

    Returns:
        The model, masks, targets, achieved sparsity per pruned layer and the fine-tuning history.

    Raises:
        ValueError: a name is not a weighted layer, a target lies outside [0, 1), or ``epochs`` < 0.
    """
    epochs = training.epochs if epochs is None else epochs
    if epochs < 0:
        raise ValueError(f"epochs must be at least 0, got {epochs}")
    targets = _targets(model, sparsity)
    masks = magnitude_masks(model, targets)
    apply_masks(model, masks)
    history: dict[str, list[float]] = {}
    if epochs:
        kernels = {name: model.get_layer(name).kernel for name in weighted_layer_names(model)}
        saved = {name: (kernel.constraint, kernel.trainable) for name, kernel in kernels.items()}
        try:
            for name, mask in masks.items():
                kernels[name].constraint = KeepMasked(mask)
            if snapshot:
                freeze_kernels(model)
            compile_model(model, training, objective(training))
            fitted = model.fit(x, y, batch_size=training.batch_size, epochs=epochs, shuffle=True, verbose=0)
            history = {key: [float(v) for v in values] for key, values in fitted.history.items()}
        finally:
            for name, kernel in kernels.items():
                kernel.constraint, kernel.trainable = saved[name]
    return ConnectionPruning(
        model=model,
        masks=masks,
        target=targets,
        sparsity=kernel_sparsity(model, list(masks)),
        history=history,
    )
