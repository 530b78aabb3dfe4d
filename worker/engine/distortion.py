"""Çallı's weight distortion: noise on the surviving weights between cycles."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np


def distort(model: keras.Model, layers: Sequence[str], scale: float, rng: np.random.Generator) -> None:
    """Add ``scale · (1 − var(W)) · U(−1, 1)`` to the kernels of the named layers, in place.

    Noise pushes units that have drifted into sharing one feature apart, so that later cycles can
    find them redundant (Çallı 2017). ``1 − var(W)`` is clipped at 0, so a kernel with large variance
    is left alone.

    Args:
        model: the model to perturb.
        layers: names of the layers whose kernels get noise.
        scale: noise scale; 0 does nothing.
        rng: the source of the noise (seeded by the caller for reproducibility).
    """
    if scale <= 0:
        return
    for name in layers:
        layer = model.get_layer(name)
        weights = layer.get_weights()
        kernel = weights[0]
        amplitude = scale * max(0.0, 1.0 - float(np.var(kernel)))
        weights[0] = (kernel + amplitude * rng.uniform(-1.0, 1.0, kernel.shape)).astype(kernel.dtype)
        layer.set_weights(weights)
