"""Per-unit activation statistics in one compiled pass over a dataset.

For every prunable layer the pass measures its units' outputs after the activation (and after a
BatchNorm that follows it): how many are > 0 (Çallı's activation count), how many are exactly 0
(APoZ, Hu et al.), mean, variance, minimum, maximum, and a fixed-bin histogram per unit. A channel is
measured over examples and spatial positions.

One ``tf.function`` measures a batch; the first batch fixes each layer's histogram edges (its range,
widened by a quarter; values outside fall into the first or last bin) and a per-unit shift, and every
batch is folded into running per-unit state. Per batch, shifted sums and sums of squares
are reduced in float32 and summed over batches in float64; as the shift is the first batch's mean, a
million examples lose no precision. Histograms count the first ``histogram_rows`` rows of every batch
(a channel's row is one example at one position); all other statistics count every value.

The probe model and its traced step are built once per (model, layers, batch, bins, rows) and kept
while the model lives, with an input signature of any batch length: measuring the same model again,
on any number of examples, does not trace again, and a new (pruned) model traces once.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from prunespec.layers import ModelSpec
from worker.engine.results import LayerStats
from worker.engine.topology import probe_activation, unit_blocks

LayerState = tuple[tf.Tensor, ...]
#: Per layer, fixed by the first batch: shift, low edge, bin width (float32), lowest and highest value.
Fixed = tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]
#: Per layer: the state after the last batch, and (lowest, highest, shift) of the first batch.
PassResult = tuple[tuple[LayerState, ...], tuple[tuple[tf.Tensor, tf.Tensor, tf.Tensor], ...]]
_PassKey = tuple[tuple[str, ...], int, int, int]
_PASSES: weakref.WeakKeyDictionary[keras.Model, dict[_PassKey, Callable[[tf.Tensor], PassResult]]] = (
    weakref.WeakKeyDictionary()
)
_TRACES = [0]
#: Activations whose outputs are never negative: there, active = values - zeros.
NONNEGATIVE = frozenset({"relu", "relu6"})


def traces() -> int:
    """How many times a statistics pass has been traced in this process (for tests and benchmarks)."""
    return _TRACES[0]


def probe_model(model: keras.Model, spec: ModelSpec, layers: Sequence[str]) -> keras.Model:
    """A model whose outputs are the measured outputs of the named prunable layers, in order."""
    blocks = unit_blocks(spec)
    outputs = [model.get_layer(spec.layers[blocks[name].probe].name).output for name in layers]
    return keras.Model(model.input, outputs, name="prunelab_probe")


def _bin_range(low: float, high: float) -> tuple[float, float]:
    """The histogram range a layer's first-batch extremes give (a quarter wider at the top)."""
    if high - low < 1e-6:
        return low - 0.5, high + 0.5
    return low, high + 0.25 * (high - low)


def _bin_edges(low: float, high: float, bins: int) -> np.ndarray:
    first, last = _bin_range(low, high)
    return np.linspace(first, last, bins + 1)


def _graph_bins(flat: tf.Tensor, bins: int) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """In the graph: the first batch's extremes and the float32 low edge and bin width they give."""
    low32, high32 = tf.reduce_min(flat), tf.reduce_max(flat)
    low, high = tf.cast(low32, tf.float64), tf.cast(high32, tf.float64)
    narrow = high - low < 1e-6
    first = tf.where(narrow, low - 0.5, low)
    last = tf.where(narrow, high + 0.5, high + 0.25 * (high - low))
    width = (last - first) / bins
    return low32, high32, tf.cast(first, tf.float32), tf.cast(width, tf.float32)


def _initial_state(units: int, bins: int) -> LayerState:
    return (
        tf.zeros([], tf.int64),  # values per unit so far
        tf.zeros([units], tf.int64),  # active
        tf.zeros([units], tf.int64),  # zeros
        tf.zeros([units], tf.float64),  # sum of (value - shift)
        tf.zeros([units], tf.float64),  # sum of (value - shift)²
        tf.fill([units], np.float32(np.inf)),  # minimum
        tf.fill([units], np.float32(-np.inf)),  # maximum
        tf.zeros([units * bins], tf.int64),  # histogram, unit-major
    )


def _update(
    state: LayerState,
    flat: tf.Tensor,
    shift: tf.Tensor,
    low: tf.Tensor,
    width: tf.Tensor,
    bins: int,
    histogram_rows: int,
    nonnegative: bool,
) -> LayerState:
    count, active, zeros, s1, s2, minimum, maximum, histogram = state
    units = flat.shape[-1]
    rows = tf.shape(flat, out_type=tf.int64)[0]
    # Counts per batch are exact in float32 (far below 2**24) and cheaper to reduce than int64.
    batch_zeros = tf.cast(tf.reduce_sum(tf.cast(flat == 0, tf.float32), axis=0), tf.int64)
    zeros += batch_zeros
    if nonnegative:  # after a ReLU every value that is not 0 is > 0: one reduction fewer
        active += rows - batch_zeros
    else:
        active += tf.cast(tf.reduce_sum(tf.cast(flat > 0, tf.float32), axis=0), tf.int64)
    # Sums of values shifted by the first batch's mean keep float32 accurate within a batch; summed
    # over batches in float64 (the shift is fixed, so no per-batch merge is needed).
    deviation = flat - shift
    s1 += tf.cast(tf.reduce_sum(deviation, axis=0), tf.float64)
    s2 += tf.cast(tf.reduce_sum(tf.square(deviation), axis=0), tf.float64)
    minimum = tf.minimum(minimum, tf.reduce_min(flat, axis=0))
    maximum = tf.maximum(maximum, tf.reduce_max(flat, axis=0))
    sample = flat[:histogram_rows]
    index = tf.clip_by_value(tf.cast(tf.floor((sample - low) / width), tf.int32), 0, bins - 1)
    index += tf.range(units, dtype=tf.int32) * bins
    histogram += tf.math.bincount(tf.reshape(index, [-1]), minlength=units * bins, dtype=tf.int64)
    return (count + rows, active, zeros, s1, s2, minimum, maximum, histogram)


def _flat(values: tf.Tensor) -> tf.Tensor:
    return tf.reshape(tf.cast(values, tf.float32), [-1, values.shape[-1]])


def _first_batch(flat: tf.Tensor, bins: int) -> Fixed:
    """What the first batch fixes for the whole pass: shift, low edge, bin width, and its extremes."""
    low32, high32, low, width = _graph_bins(flat, bins)
    return (tf.reduce_mean(flat, axis=0), low, width, low32, high32)


def _compiled_pass(
    probe: keras.Model, nonnegative: Sequence[bool], batch_size: int, bins: int, histogram_rows: int
) -> Callable[[tf.Tensor], PassResult]:
    """The pass over a whole input array for one probe model (``nonnegative`` per output).

    One ``tf.function`` runs a batch: the probe's forward pass and every layer's update (on the first
    batch it also fixes the shifts and histogram edges). Its input signature admits any batch length,
    so it is traced once, however many examples and whatever the last batch's size.
    """
    input_shape = tuple(probe.input.shape[1:])
    outputs = probe.outputs if isinstance(probe.outputs, list | tuple) else [probe.outputs]
    widths = [int(o.shape[-1]) for o in outputs]
    state_spec = tuple(
        (
            tf.TensorSpec([], tf.int64),
            tf.TensorSpec([units], tf.int64),
            tf.TensorSpec([units], tf.int64),
            tf.TensorSpec([units], tf.float64),
            tf.TensorSpec([units], tf.float64),
            tf.TensorSpec([units], tf.float32),
            tf.TensorSpec([units], tf.float32),
            tf.TensorSpec([units * bins], tf.int64),
        )
        for units in widths
    )
    fixed_spec = tuple(
        (tf.TensorSpec([units], tf.float32), *(tf.TensorSpec([], tf.float32) for _ in range(4)))
        for units in widths
    )

    @tf.function(
        input_signature=[
            state_spec,
            fixed_spec,
            tf.TensorSpec([None, *input_shape], tf.float32),
            tf.TensorSpec([], tf.bool),
        ]
    )
    def step(
        state: tuple[LayerState, ...], fixed: tuple[Fixed, ...], batch: tf.Tensor, first: tf.Tensor
    ) -> tuple[tuple[LayerState, ...], tuple[Fixed, ...]]:
        _TRACES[0] += 1
        values = probe(batch, training=False)
        values = values if isinstance(values, list | tuple) else [values]
        states, fixes = [], []
        for i, output in enumerate(values):
            flat = _flat(output)
            layer_fixed = tf.cond(
                first, lambda flat=flat: _first_batch(flat, bins), lambda i=i: tuple(fixed[i])
            )
            shift, low, width = layer_fixed[:3]
            states.append(_update(state[i], flat, shift, low, width, bins, histogram_rows, nonnegative[i]))
            fixes.append(tuple(layer_fixed))
        return tuple(states), tuple(fixes)

    def run(x: tf.Tensor) -> PassResult:
        state = tuple(_initial_state(units, bins) for units in widths)
        fixed = tuple(
            (tf.zeros([units], tf.float32), *(tf.zeros([], tf.float32) for _ in range(4))) for units in widths
        )
        total = int(x.shape[0])
        for begin in range(0, total, batch_size):
            state, fixed = step(state, fixed, x[begin : begin + batch_size], tf.constant(begin == 0))
        return state, tuple((low32, high32, shift) for shift, _, _, low32, high32 in fixed)

    return run


def _pass_for(
    model: keras.Model,
    spec: ModelSpec,
    layers: Sequence[str],
    batch_size: int,
    bins: int,
    histogram_rows: int,
) -> Callable[[tf.Tensor], PassResult]:
    """The cached traced pass of ``model`` (built on first use, dropped with the model)."""
    blocks = unit_blocks(spec)
    probes = tuple(spec.layers[blocks[name].probe].name or name for name in layers)
    key = (probes, batch_size, bins, histogram_rows)
    passes = _PASSES.setdefault(model, {})
    if key not in passes:
        nonnegative = [probe_activation(spec, blocks[name]) in NONNEGATIVE for name in layers]
        probe = probe_model(model, spec, layers)
        passes[key] = _compiled_pass(probe, nonnegative, batch_size, bins, histogram_rows)
    return passes[key]


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
    run = _pass_for(model, spec, layers, batch_size, bins, histogram_rows)
    final, extremes = run(tf.convert_to_tensor(np.asarray(x, dtype=np.float32)))
    result: dict[str, LayerStats] = {}
    for name, layer_state, (low, high, shift) in zip(layers, final, extremes, strict=True):
        count, active, zeros, s1, s2, minimum, maximum, histogram = (np.asarray(t) for t in layer_state)
        outputs = int(count)
        offset = s1 / max(outputs, 1)  # mean - shift
        units = int(active.shape[0])
        result[name] = LayerStats(
            layer=name,
            outputs=outputs,
            active=active.astype(np.int64),
            zeros=zeros.astype(np.int64),
            mean=np.asarray(shift, np.float64) + offset,
            variance=np.maximum(s2 / max(outputs, 1) - np.square(offset), 0.0),
            minimum=minimum.astype(np.float64),
            maximum=maximum.astype(np.float64),
            histogram=histogram.reshape(units, bins).astype(np.int64),
            bin_edges=_bin_edges(float(low), float(high), bins),
        )
    return result
