"""Per-unit activation statistics in one compiled pass over a dataset.

For every prunable layer the pass measures its units' outputs after the activation (and after a
BatchNorm that follows it): how many are > 0 (Çallı's activation count), how many are exactly 0
(APoZ, Hu et al.), mean, variance, minimum, maximum, and a fixed-bin histogram per unit. A channel is
measured over examples and spatial positions.

The whole pass is one ``tf.data.Dataset.reduce`` inside a ``tf.function``; means and variances are
merged batch by batch in float64 (Chan et al.'s parallel update), so a million examples lose no
precision. Histogram edges are fixed before the pass from the first batch's range (widened by a
quarter); values outside them fall into the first or last bin. Histograms count the first
``histogram_rows`` rows of every batch (a channel's row is one example at one position); all other
statistics count every value.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from backend.layers import ModelSpec
from worker.engine.results import LayerStats
from worker.engine.topology import unit_blocks


def probe_model(model: keras.Model, spec: ModelSpec, layers: Sequence[str]) -> keras.Model:
    """A model whose outputs are the measured outputs of the named prunable layers, in order."""
    blocks = unit_blocks(spec)
    outputs = [model.get_layer(spec.layers[blocks[name].probe].name).output for name in layers]
    return keras.Model(model.input, outputs, name="prunelab_probe")


def _bin_edges(first: np.ndarray, bins: int) -> np.ndarray:
    low, high = float(np.min(first)), float(np.max(first))
    if high - low < 1e-6:
        low, high = low - 0.5, high + 0.5
    else:
        high = high + 0.25 * (high - low)
    return np.linspace(low, high, bins + 1)


def _initial_state(widths: Sequence[int], bins: int) -> tuple[tuple[tf.Tensor, ...], ...]:
    state = []
    for units in widths:
        state.append(
            (
                tf.zeros([], tf.int64),  # values per unit so far
                tf.zeros([units], tf.int64),  # active
                tf.zeros([units], tf.int64),  # zeros
                tf.zeros([units], tf.float64),  # mean
                tf.zeros([units], tf.float64),  # sum of squared deviations (M2)
                tf.fill([units], np.float32(np.inf)),  # minimum
                tf.fill([units], np.float32(-np.inf)),  # maximum
                tf.zeros([units * bins], tf.int64),  # histogram, unit-major
            )
        )
    return tuple(state)


def _update(
    state: tuple[tf.Tensor, ...],
    values: tf.Tensor,
    shift: tf.Tensor,
    low: float,
    width: float,
    bins: int,
    histogram_rows: int,
) -> tuple[tf.Tensor, ...]:
    count, active, zeros, mean, m2, minimum, maximum, histogram = state
    units = values.shape[-1]
    flat = tf.reshape(tf.cast(values, tf.float32), [-1, units])
    rows = tf.shape(flat, out_type=tf.int64)[0]
    rows64 = tf.cast(rows, tf.float64)
    # Counts per batch are exact in float32 (far below 2**24) and cheaper to reduce than int64.
    active += tf.cast(tf.reduce_sum(tf.cast(flat > 0, tf.float32), axis=0), tf.int64)
    zeros += tf.cast(tf.reduce_sum(tf.cast(flat == 0, tf.float32), axis=0), tf.int64)
    # Sums of values shifted by a per-unit guess of the mean keep float32 accurate; merged in float64.
    deviation = flat - shift
    s1 = tf.cast(tf.reduce_sum(deviation, axis=0), tf.float64)
    s2 = tf.cast(tf.reduce_sum(tf.square(deviation), axis=0), tf.float64)
    batch_mean = tf.cast(shift, tf.float64) + s1 / rows64
    batch_m2 = tf.maximum(s2 - tf.square(s1) / rows64, 0.0)
    total = count + rows
    share = rows64 / tf.cast(total, tf.float64)
    delta = batch_mean - mean
    mean += delta * share
    m2 += batch_m2 + tf.square(delta) * tf.cast(count, tf.float64) * share
    minimum = tf.minimum(minimum, tf.reduce_min(flat, axis=0))
    maximum = tf.maximum(maximum, tf.reduce_max(flat, axis=0))
    sample = flat[:histogram_rows]
    index = tf.clip_by_value(tf.cast(tf.floor((sample - low) / width), tf.int32), 0, bins - 1)
    index += tf.range(units, dtype=tf.int32) * bins
    histogram += tf.math.bincount(tf.reshape(index, [-1]), minlength=units * bins, dtype=tf.int64)
    return (total, active, zeros, mean, m2, minimum, maximum, histogram)


def measure(
    model: keras.Model,
    spec: ModelSpec,
    layers: Sequence[str],
    x: np.ndarray,
    *,
    batch_size: int = 1024,
    bins: int = 32,
    histogram_rows: int = 256,
) -> dict[str, LayerStats]:
    """Activation statistics of every unit of the named prunable layers.

    Args:
        model: a model built from ``spec`` (layer names as in the spec).
        spec: its architecture.
        layers: prunable layer names to measure.
        x: the inputs to feed, already shaped for the model.
        batch_size: examples per step. Default 1024.
        bins: histogram bins per unit. Default 32.
        histogram_rows: rows of each batch (examples × positions) that feed the histograms. Default
            256: a per-unit histogram of every value would cost more than the forward pass itself,
            while the counts, moments and extremes always cover every value.

    Returns:
        LayerStats by layer name.

    Raises:
        ValueError: ``x`` is empty.
    """
    if len(x) == 0:
        raise ValueError("measuring activations needs at least one example")
    if not layers:
        return {}
    probe = probe_model(model, spec, layers)
    first = probe(x[:batch_size], training=False)
    first = first if isinstance(first, list | tuple) else [first]
    edges = [_bin_edges(np.asarray(values), bins) for values in first]
    widths = [int(values.shape[-1]) for values in first]
    lows = [float(e[0]) for e in edges]
    steps = [float(e[1] - e[0]) for e in edges]
    shifts = [
        tf.constant(np.asarray(values).reshape(-1, units).mean(axis=0), dtype=tf.float32)
        for values, units in zip(first, widths, strict=True)
    ]

    def reduce_batch(
        state: tuple[tuple[tf.Tensor, ...], ...], batch: tf.Tensor
    ) -> tuple[tuple[tf.Tensor, ...], ...]:
        outputs = probe(batch, training=False)
        outputs = outputs if isinstance(outputs, list | tuple) else [outputs]
        return tuple(
            _update(layer_state, values, shifts[i], lows[i], steps[i], bins, histogram_rows)
            for i, (layer_state, values) in enumerate(zip(state, outputs, strict=True))
        )

    dataset = tf.data.Dataset.from_tensor_slices(np.asarray(x, dtype=np.float32)).batch(batch_size)

    @tf.function
    def run() -> tuple[tuple[tf.Tensor, ...], ...]:
        return dataset.reduce(_initial_state(widths, bins), reduce_batch)

    final = run()
    result: dict[str, LayerStats] = {}
    for name, layer_state, layer_edges, units in zip(layers, final, edges, widths, strict=True):
        count, active, zeros, mean, m2, minimum, maximum, histogram = (np.asarray(t) for t in layer_state)
        outputs = int(count)
        result[name] = LayerStats(
            layer=name,
            outputs=outputs,
            active=active.astype(np.int64),
            zeros=zeros.astype(np.int64),
            mean=mean.astype(np.float64),
            variance=(m2 / max(outputs, 1)).astype(np.float64),
            minimum=minimum.astype(np.float64),
            maximum=maximum.astype(np.float64),
            histogram=histogram.reshape(units, bins).astype(np.int64),
            bin_edges=layer_edges,
        )
    return result
