"""Per-unit activation statistics in one compiled pass over a dataset.

For every dependency group (``prunespec.groups``) the pass measures the outputs at each of its probes:
after the activation (and after a BatchNorm that follows it) of every producer, and after every add,
multiply or depthwise convolution the group's channels flow through: how many are > 0 (Çallı's
activation count), how many are exactly 0 (APoZ, Hu et al.), mean, variance, minimum, maximum, and a
fixed-bin histogram per unit. A channel is measured over examples and spatial positions. A group's
statistics are its primary probe's; ``group_stats.combine`` aggregates all its probes for the criteria.

One traced ``tf.function`` runs the whole pass: the first batch fixes each layer's histogram edges
(its range, widened by a quarter; values outside fall into the first or last bin) and a per-unit
shift, and a ``tf.while_loop`` folds every step into running per-unit state, so no batch returns to
Python. A step is ``batch_size`` examples, or, without an accelerator, fewer where the largest
probe's values would not stay in cache (:data:`STEP_BYTES`) while the statistics read them. Per
step, one XLA-compiled function (plain TensorFlow where XLA cannot compile it) makes every channel's
reductions: values > 0 and == 0 (int32), minimum, maximum, sums of values less the shift and of
their squares (float32); the pass sums them over steps in float64. As the shift is the first batch's
mean, a million examples lose no precision, and a constant channel's sums stay 0. Histograms count
about ``histogram_rows`` rows of the whole pass, the first few rows of every step (a channel's row is
one example at one position); all other statistics count every value.

The probe model and its traced pass are built once per (model, probes, batch, bins, rows) and kept
while the model lives, with an input signature of any number of examples: measuring the same model
again, on any number of examples, does not trace again, and a new (pruned) model traces once.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from prunespec.groups import Group, groups_by_name
from prunespec.layers import ModelSpec
from worker.engine.results import LayerStats

LayerState = tuple[tf.Tensor, ...]
#: Per layer, fixed by the first batch: shift, low edge, bin width (float32), lowest and highest value.
Fixed = tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]
#: Rows a pass's histograms count by default: with 16,384 rows sampled, a bin's share of a unit's
#: values has a standard error of at most 0.4 percentage points (√(¼ / 16,384)), and the cost no longer
#: grows with the examples measured.
HISTOGRAM_ROWS = 16_384
#: Per unit over one step: values > 0, values == 0, minimum, maximum, and the sums of (value - shift)
#: and (value - shift)².
Reductions = tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]
#: Per layer: the state after the last batch, and (lowest, highest, shift) of the first batch.
PassResult = tuple[tuple[LayerState, ...], tuple[tuple[tf.Tensor, tf.Tensor, tf.Tensor], ...]]
_PassKey = tuple[tuple[str, ...], int, int, int]
_PASSES: weakref.WeakKeyDictionary[keras.Model, dict[_PassKey, _Pass]] = weakref.WeakKeyDictionary()
_TRACES = [0]
#: Bytes of one probe's values a step may hold. The statistics read a step's values several times
#: (counts, sums, squares, extremes); under this size they stay in cache between the reads. A
#: 1024-example step of a 28×28×64 probe (205 MB) would go to memory every time, which made the pass
#: four times slower than predict on mobilenet-v2-mini (steps of 64 examples: 1.15×).
STEP_BYTES = 4 * 2**20


def traces() -> int:
    """How many times a statistics pass has been traced in this process (for tests and benchmarks)."""
    return _TRACES[0]


def _groups(spec: ModelSpec, layers: Sequence[str]) -> list[Group]:
    groups = groups_by_name(spec)
    unknown = [name for name in layers if name not in groups]
    if unknown:
        raise ValueError(f"{unknown} are not groups of this model; groups: {list(groups)}")
    return [groups[name] for name in layers]


def _probe_names(groups: Sequence[Group]) -> tuple[str, ...]:
    """Every probe of the groups, each once, primary probes first in group order."""
    names: dict[str, None] = {}
    for group in groups:
        names.setdefault(group.probes[0], None)
    for group in groups:
        for probe in group.probes[1:]:
            names.setdefault(probe, None)
    return tuple(names)


def _probe_outputs(model: keras.Model, probes: Sequence[str]) -> keras.Model:
    return keras.Model(model.input, [model.get_layer(p).output for p in probes], name="prunelab_probe")


def probe_model(model: keras.Model, spec: ModelSpec, layers: Sequence[str]) -> keras.Model:
    """A model whose outputs are the primary probes' outputs of the named groups, in order."""
    return _probe_outputs(model, [group.probes[0] for group in _groups(spec, layers)])


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
    grid: tf.Tensor,
    shift: tf.Tensor,
    low: tf.Tensor,
    width: tf.Tensor,
    bins: int,
    sampled: tf.Tensor,
    reductions: Callable[[tf.Tensor, tf.Tensor], Reductions],
) -> LayerState:
    """Fold one batch's values (``grid``: examples × positions × units) into a layer's running
    state; the histograms count its first ``sampled`` rows (a row: one example at one position)."""
    flat = tf.reshape(grid, [-1, grid.shape[-1]])
    count, active, zeros, s1, s2, minimum, maximum, histogram = state
    units = flat.shape[-1]
    rows = tf.shape(flat, out_type=tf.int64)[0]
    batch_active, batch_zeros, batch_min, batch_max, batch_sum, batch_squares = reductions(grid, shift)
    active += tf.cast(batch_active, tf.int64)
    zeros += tf.cast(batch_zeros, tf.int64)
    # Sums are of values less the first batch's mean (the shift, fixed for the pass), reduced per step in
    # float32 and summed over steps in float64: a constant channel's sums stay 0, a large offset costs
    # no precision
    s1 += tf.cast(batch_sum, tf.float64)
    s2 += tf.cast(batch_squares, tf.float64)
    minimum = tf.minimum(minimum, batch_min)
    maximum = tf.maximum(maximum, batch_max)
    sample = flat[:sampled]
    index = tf.clip_by_value(tf.cast(tf.floor((sample - low) / width), tf.int32), 0, bins - 1)
    index += tf.range(units, dtype=tf.int32) * bins
    # a step's counts fit in int32 (cheaper to count); the pass sums them in int64
    counts = tf.math.bincount(tf.reshape(index, [-1]), minlength=units * bins, dtype=tf.int32)
    histogram += tf.cast(counts, tf.int64)
    return (count + rows, active, zeros, s1, s2, minimum, maximum, histogram)


def _grid(values: tf.Tensor) -> tf.Tensor:
    """A probe's values as examples × positions × units (a dense layer's: one position)."""
    positions = int(np.prod(values.shape[1:-1]))
    return tf.reshape(tf.cast(values, tf.float32), [-1, positions, values.shape[-1]])


def _first_batch(grid: tf.Tensor, bins: int) -> Fixed:
    """What the first batch fixes for the whole pass: shift, low edge, bin width, and its extremes."""
    flat = tf.reshape(grid, [-1, grid.shape[-1]])
    low32, high32, low, width = _graph_bins(flat, bins)
    return (tf.reduce_mean(flat, axis=0), low, width, low32, high32)


def _reductions(grid: tf.Tensor, shift: tf.Tensor) -> Reductions:
    """Per unit over a step's values (examples × positions × units): values > 0, values == 0
    (int32: exact, and as cheap as float32), minimum, maximum, and the sums of (value - shift) and
    (value - shift)², in float32.

    Each is reduced over the examples first, with every (position, unit) as a column, then over the
    positions: a unit's column alone is too narrow to fill a vector register (16 channels at 28×28
    positions reduce 2× faster this way), and the sums only change order.
    """
    positions, units = grid.shape[1], grid.shape[2]
    wide = tf.reshape(grid, [-1, positions * units])
    shifted = wide - tf.tile(shift, [positions])
    per_position = (
        (tf.reduce_sum, tf.cast(wide > 0, tf.int32)),
        (tf.reduce_sum, tf.cast(wide == 0, tf.int32)),
        (tf.reduce_min, wide),
        (tf.reduce_max, wide),
        (tf.reduce_sum, shifted),
        (tf.reduce_sum, tf.square(shifted)),
    )
    active, zeros, minimum, maximum, sums, squares = (
        reduce(tf.reshape(reduce(values, axis=0), [positions, units]), axis=0)
        for reduce, values in per_position
    )
    return active, zeros, minimum, maximum, sums, squares


#: :func:`_reductions` compiled by XLA, which fuses the six into one pass over a batch's values
#: (TensorFlow's kernels read them six times). Shared by every pass: traced once per unit count,
#: compiled once per shape, so a pruned model reuses the compilations of the layers it did not change.
_xla_reductions = tf.function(_reductions, jit_compile=True)


def step_examples(probe: keras.Model, batch_size: int) -> int:
    """Examples per step of the pass: ``batch_size``, or on a machine without an accelerator fewer,
    where its largest probe's values of a step would exceed :data:`STEP_BYTES` (at least one). An
    accelerator keeps whole batches: there, steps of a few examples would leave it idle."""
    if tf.config.list_logical_devices("GPU"):
        return batch_size
    outputs = probe.outputs if isinstance(probe.outputs, list | tuple) else [probe.outputs]
    largest = max(4 * int(np.prod(o.shape[1:])) for o in outputs)
    return max(1, min(batch_size, STEP_BYTES // largest))


def _compiled_pass(
    probe: keras.Model,
    batch_size: int,
    bins: int,
    histogram_rows: int,
    xla: bool,
) -> Callable[[tf.Tensor], PassResult]:
    """The pass over a whole input array for one probe model.

    One ``tf.function`` runs the whole pass: the first batch's forward pass (``batch_size`` examples)
    fixes the shifts and histogram edges and is folded in, then a ``tf.while_loop`` folds in the
    rest in cache-sized steps (:func:`step_examples`), so no batch returns to Python. Its input
    signature admits any number of examples, so it is traced once.
    """
    input_shape = tuple(probe.input.shape[1:])
    outputs = probe.outputs if isinstance(probe.outputs, list | tuple) else [probe.outputs]
    widths = [int(o.shape[-1]) for o in outputs]
    step = step_examples(probe, batch_size)

    # XLA reads a step's values once for all six reductions; compiled per step shape (full steps,
    # the last one, the first batch), not traced again.
    reductions = _xla_reductions if xla else _reductions

    def forward(batch: tf.Tensor) -> list[tf.Tensor]:
        values = probe(batch, training=False)
        return [_grid(v) for v in (values if isinstance(values, list | tuple) else [values])]

    def fold(
        state: tuple[LayerState, ...],
        fixed: tuple[Fixed, ...],
        grids: Sequence[tf.Tensor],
        sampled: tf.Tensor,
    ) -> tuple[LayerState, ...]:
        return tuple(
            _update(layer, grid, shift, low, width, bins, sampled, reductions)
            for layer, grid, (shift, low, width, _, _) in zip(state, grids, fixed, strict=True)
        )

    @tf.function(input_signature=[tf.TensorSpec([None, *input_shape], tf.float32)])
    def run(x: tf.Tensor) -> PassResult:
        _TRACES[0] += 1
        # the first batch is a whole ``batch_size``, however small the later steps: its range fixes the
        # histogram edges and the shift, so they rest on as many examples as before steps shrank
        total = tf.shape(x)[0]
        # the histograms' rows are spread evenly over the steps: each step gives its first ``sampled``
        steps = 1 + (tf.maximum(total - batch_size, 0) + step - 1) // step
        sampled = tf.maximum(1, (min(histogram_rows, 2**30) + steps - 1) // steps)
        grids = forward(x[:batch_size])
        fixed = tuple(_first_batch(grid, bins) for grid in grids)
        state = fold(tuple(_initial_state(units, bins) for units in widths), fixed, grids, sampled)

        def more(begin: tf.Tensor, state: tuple[LayerState, ...]) -> tf.Tensor:
            return begin < total

        def next_batch(
            begin: tf.Tensor, state: tuple[LayerState, ...]
        ) -> tuple[tf.Tensor, tuple[LayerState, ...]]:
            return begin + step, fold(state, fixed, forward(x[begin : begin + step]), sampled)

        # one batch at a time: a batch's activations are freed before the next one's are computed
        _, state = tf.while_loop(more, next_batch, (tf.constant(batch_size), state), parallel_iterations=1)
        return state, tuple((low32, high32, shift) for shift, _, _, low32, high32 in fixed)

    return run


@dataclasses.dataclass
class _Pass:
    run: Callable[[tf.Tensor], PassResult]
    xla: bool


#: Where XLA cannot compile the batch reductions (no XLA for the device, say): errors it raises.
_NOT_COMPILED = (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError, tf.errors.NotFoundError)


def _run_pass(
    model: keras.Model,
    probes: tuple[str, ...],
    x: tf.Tensor,
    batch_size: int,
    bins: int,
    histogram_rows: int,
) -> PassResult:
    """Run the cached traced pass of ``model`` over ``probes`` (built on first use, dropped with the
    model). If XLA cannot compile its reductions, the pass is rebuilt without XLA and kept so."""
    key = (probes, batch_size, bins, histogram_rows)
    passes = _PASSES.setdefault(model, {})

    def build(xla: bool) -> _Pass:
        probe = _probe_outputs(model, probes)
        return _Pass(_compiled_pass(probe, batch_size, bins, histogram_rows, xla), xla)

    if key not in passes:
        passes[key] = build(xla=True)
    compiled = passes[key]
    try:
        return compiled.run(x)
    except _NOT_COMPILED:
        if not compiled.xla:
            raise
        passes[key] = build(xla=False)
        return passes[key].run(x)


def measure_probes(
    model: keras.Model,
    spec: ModelSpec,
    layers: Sequence[str],
    x: np.ndarray,
    *,
    batch_size: int = 1024,
    bins: int = 32,
    histogram_rows: int = HISTOGRAM_ROWS,
) -> dict[str, list[LayerStats]]:
    """Activation statistics of every channel of the named groups, at each of their probes.

    Args:
        model: a model built from ``spec`` (layer names as in the spec).
        spec: its architecture.
        layers: group names to measure (``spec.prunable_names()`` or some of them).
        x: the inputs to feed, already shaped for the model.
        batch_size: most examples per step (on a CPU, fewer where a probe's values would exceed
            :data:`STEP_BYTES`). Default 1024.
        bins: histogram bins per unit. Default 32.
        histogram_rows: about how many rows (examples × positions) of the pass feed the histograms,
            spread evenly over its steps (each step gives its first rows, at least one). Default
            :data:`HISTOGRAM_ROWS`: a per-unit histogram of every value would cost more than the
            forward pass itself, while the counts, moments and extremes always cover every value.

    Returns:
        per group name, one LayerStats per probe in ``Group.probes`` order; the first (the primary
        probe's) is labelled with the group's name, the others with their probe layer's name.

    Raises:
        ValueError: ``x`` is empty, or a name is not a group of ``spec``.
    """
    if len(x) == 0:
        raise ValueError("measuring activations needs at least one example")
    if not layers:
        return {}
    groups = _groups(spec, layers)
    probes = _probe_names(groups)
    x_tensor = tf.convert_to_tensor(np.asarray(x, dtype=np.float32))
    final, extremes = _run_pass(model, probes, x_tensor, batch_size, bins, histogram_rows)
    measured: dict[str, LayerStats] = {}
    for probe, layer_state, (low, high, shift) in zip(probes, final, extremes, strict=True):
        count, active, zeros, s1, s2, minimum, maximum, histogram = (np.asarray(t) for t in layer_state)
        outputs = int(count)
        offset = s1 / max(outputs, 1)  # mean - shift
        units = int(active.shape[0])
        measured[probe] = LayerStats(
            layer=probe,
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
    return {
        group.name: [
            dataclasses.replace(measured[group.probes[0]], layer=group.name),
            *(measured[probe] for probe in group.probes[1:]),
        ]
        for group in groups
    }


def measure(
    model: keras.Model,
    spec: ModelSpec,
    layers: Sequence[str],
    x: np.ndarray,
    *,
    batch_size: int = 1024,
    bins: int = 32,
    histogram_rows: int = HISTOGRAM_ROWS,
) -> dict[str, LayerStats]:
    """Activation statistics of every channel of the named groups at their primary probes.

    The same traced pass as :func:`measure_probes` (every probe is measured); arguments as there.

    Returns:
        LayerStats by group name (for a sequential model: by prunable layer name).

    Raises:
        ValueError: ``x`` is empty, or a name is not a group of ``spec``.
    """
    probes = measure_probes(
        model, spec, layers, x, batch_size=batch_size, bins=bins, histogram_rows=histogram_rows
    )
    return {name: measured[0] for name, measured in probes.items()}
