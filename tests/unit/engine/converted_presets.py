"""The presets with random weights, each converted to TFLite at most once per session.

A conversion costs seconds (a SavedModel export, then the converter), whatever the model's size; the
TFLite and bits tests read the same preset flatbuffers (the ``converted_presets`` fixture) instead of
converting them again.
"""

from __future__ import annotations

import keras
import numpy as np

from prunespec.presets import preset, preset_names
from worker.engine.build import build_model
from worker.engine.tflite import convert

#: Representative examples the cached ``int8_full`` conversions are calibrated on.
CALIBRATION_SAMPLES = 32


def _randomise_vectors(model: keras.Model, rng: np.random.Generator) -> None:
    """Non-zero biases and batch-norm statistics, so the converter cannot drop or fold them trivially."""
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        new = []
        for variable, value in zip(layer.weights, weights, strict=True):
            if value.ndim > 1:
                new.append(value)
            elif "variance" in variable.path or "gamma" in variable.path:
                new.append(rng.uniform(0.5, 1.5, value.shape).astype(np.float32))
            else:
                new.append(rng.normal(0.0, 0.1, value.shape).astype(np.float32))
        layer.set_weights(new)


class ConvertedPresets:
    """Every preset with random weights, a test batch and representative inputs in [0, 1); each
    (preset, format) flatbuffer is converted on first use and kept."""

    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self.models: dict[str, tuple[keras.Model, np.ndarray, np.ndarray]] = {}
        for name in preset_names():
            keras.utils.set_random_seed(1)
            model = build_model(preset(name))
            _randomise_vectors(model, rng)
            shape = model.input_shape[1:]
            self.models[name] = (
                model,
                rng.random((24, *shape), dtype=np.float32),
                rng.random((64, *shape), dtype=np.float32),
            )
        self._flatbuffers: dict[tuple[str, str], bytes] = {}

    def flatbuffer(self, name: str, fmt: str) -> bytes:
        """The preset converted to ``fmt`` (``int8_full`` calibrated on its representative inputs).

        Args:
            name: a preset name.
            fmt: a TFLite format.

        Returns:
            The flatbuffer, converted on the first call for this preset and format.
        """
        key = (name, fmt)
        if key not in self._flatbuffers:
            model, _, representative = self.models[name]
            self._flatbuffers[key] = convert(
                model, fmt, representative, calibration_samples=CALIBRATION_SAMPLES
            )
        return self._flatbuffers[key]
