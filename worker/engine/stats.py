"""Per-unit activation statistics in one compiled pass over a dataset.

For every dependency group (``prunespec.groups``) the pass measures the outputs at each of its probes:
after the activation (and after a BatchNorm that follows it) of every producer, and after every add,
multiply or depthwise convolution the group's channels flow through: how many are > 0 (Çallı's
activation count), how many are exactly 0 (APoZ, Hu et al.), mean, variance, minimum, maximum, and a
fixed-bin histogram per unit. A channel is measured over examples and spatial positions. A group's
statistics are its primary probe's; ``group_stats.combine`` aggregates all its probes for the criteria.

One traced ``tf.function`` runs the whole pass: a ``tf.while_loop`` folds every step into running
per-unit state, so no batch returns to Python. A step is ``batch_size`` examples, or, without an
accelerator, fewer where the largest probe's values would not stay in cache (:data:`STEP_BYTES`;
:data:`KERNEL_STEP_BYTES` where the C kernel reads them once) while the statistics read them; the first
step also fixes a per-unit shift (its mean). Per step, one call for all probes makes every channel's
reductions: values > 0 and == 0, minimum, maximum, sums of values less the shift and of their squares.
On a CPU the C kernel of ``fold_kernel`` makes them in one read of the values (sums in float64); where
it was not built, or with an accelerator, one XLA-compiled call per full step does (sums in float32;
plain TensorFlow where XLA cannot compile it, and for a last step that does not fill one: its shape
would be compiled anew for every model). The pass sums the steps in float64, so a million examples lose
no precision, and a constant channel's sums stay 0. Histograms count about ``histogram_rows`` rows (a
channel's row is one example at one position): every ``⌈steps / 64⌉``-th step keeps a share of its rows,
spread evenly over its examples and positions, and at the end the kept rows are counted in bins from
each layer's lowest to its highest value in the whole pass (no value falls outside). All other
statistics count every value.

The probe model and its traced pass are built once per (model, probes, batch, bins, rows) and kept
while the model lives, with an input signature of any number of examples: measuring the same model
again does not trace again, and a new (pruned) model traces once. Numbers of examples the step does
not divide get a pass of their own (traced once too), the only one with a plain last step.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Callable, Sequence
from typing import Literal

import keras
import numpy as np
import tensorflow as tf

from prunespec.groups import Group, groups_by_name
from prunespec.layers import ModelSpec
from worker.engine import fold_kernel
from worker.engine.histogram_sample import HISTOGRAM_ROWS, HistogramSample, as_rows, bin_edges
from worker.engine.results import LayerStats

#: Per unit over one step: values > 0, values == 0, minimum, maximum, and the sums of (value - shift)
#: and (value - shift)².
Reductions = tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]
#: What a pass returns, every probe's units side by side: values per unit (one per probe, int64),
#: values > 0 and == 0 (2 × units, int64), sums of (value - shift) and of their squares (2 × units,
#: float64), minimum and maximum (float32), the shift, and the histograms (units × bins, int64).
PassResult = tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]
#: A step's reductions of every probe, units side by side: values > 0 and == 0 (2 × units, int32), sums
#: of (value - shift) and of their squares (2 × units, float32; float64 from the C kernel), minimum,
#: maximum.
StepReductions = tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]
#: How a pass makes its steps' reductions: the C kernel (a CPU, where it was built), XLA, or plain
#: TensorFlow (where XLA cannot compile them).
Folding = Literal["kernel", "xla", "plain"]
#: A pass's probes, batch size, bins, histogram rows, whether its last step may be partial, and how
#: it was to fold its steps.
_PassKey = tuple[tuple[str, ...], int, int, int, bool, Folding]
_PASSES: weakref.WeakKeyDictionary[keras.Model, dict[_PassKey, _Pass]] = weakref.WeakKeyDictionary()
_TRACES = [0]
#: Bytes of one probe's values a step may hold where XLA makes the reductions. It reads a step's
#: values several times (counts, sums, squares, extremes); under this size they stay in cache between
#: the reads. A 1024-example step of a 28×28×64 probe (205 MB) would go to memory every time, which
#: made the pass four times slower than predict on mobilenet-v2-mini (steps of 64 examples: 1.15×).
STEP_BYTES = 4 * 2**20
#: The same where the C kernel makes them: it reads each value once, so a step may be larger, and a
#: convolution over a larger step uses several threads better. The pass vs predict on
#: mobilenet-v2-mini (2,000 examples, median of 7 paired repeats) with steps of 4, 8, 16 and 32 MiB:
#: 1.03×, 1.09×, 1.06×, 1.18× on 1 thread; 1.73×, 1.32×, 1.05×, 1.18× on 2.
KERNEL_STEP_BYTES = 16 * 2**20


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


#: Slabs of a step's rows the reductions fold together elementwise before reducing: XLA compiles a
#: reduction along the rows into a loop about a third as fast as its elementwise loops, so the rows
#: are folded 8 to 1 first (measured per million values, the six reductions of a 1024 × 1000 step:
#: 2.3 ms reduced directly, 1.6 with 4 slabs, 1.3 with 8, 1.2 with 16; 16 slabs cost 1-1.6 s more to
#: compile on mobilenet-v2-mini, paid every cycle, as a pruned model is compiled anew).
SLABS = 8
#: Values of one probe a step must hold for its reductions to fold slabs: below, folding saves less
#: than the compile time it costs (each slab is code XLA compiles for every new model).
SLAB_VALUES = 2**16


def _per_value(values: tf.Tensor, shift: tf.Tensor) -> Reductions:
    """What each value gives the six reductions of :func:`_reductions`, before any is reduced."""
    shifted = values - shift
    return (
        tf.cast(values > 0, tf.int32),
        tf.cast(values == 0, tf.int32),
        values,
        values,
        shifted,
        tf.square(shifted),
    )


#: How two partial results of each of the six reductions combine, and how each reduces along an axis.
_COMBINE = (tf.add, tf.add, tf.minimum, tf.maximum, tf.add, tf.add)
_REDUCE = (tf.reduce_sum, tf.reduce_sum, tf.reduce_min, tf.reduce_max, tf.reduce_sum, tf.reduce_sum)


def _reductions(rows: tf.Tensor, shift: tf.Tensor, slabs: int = SLABS) -> Reductions:
    """Per unit over a step's rows (one per example and position) × units: values > 0, values == 0
    (int32: exact, and as cheap as float32), minimum, maximum, and the sums of (value - shift) and
    (value - shift)², in float32.

    The rows are first folded ``slabs`` to one elementwise (the remainder kept as is), then each
    reduction runs over the remaining rows. The sums only change order. (Reducing the examples with
    every (position, unit) as a column, then the positions, was slower with slabs: the six
    reductions of a LeNet-5 step of 91 examples took 3.1 ms that way, 1.4 ms this way; of a
    mobilenet-v2-mini step of 20, 9.0 and 8.3 ms; of the summation net's, 0.74 and 0.80 ms.)
    """
    if slabs == 1:
        parts = _per_value(rows, shift)
    else:
        slab = tf.shape(rows)[0] // slabs  # rows per slab; 0 where a step has fewer than ``slabs`` rows
        sliced = tf.reshape(rows[: slab * slabs], [slabs, slab, rows.shape[-1]])
        folded = _per_value(sliced[0], shift)
        for index in range(1, slabs):
            folded = tuple(
                combine(a, b)
                for combine, a, b in zip(_COMBINE, folded, _per_value(sliced[index], shift), strict=True)
            )
        rest = _per_value(rows[slab * slabs :], shift)
        parts = tuple(tf.concat([part, more], 0) for part, more in zip(folded, rest, strict=True))
    active, zeros, minimum, maximum, sums, squares = (
        reduce(part, axis=0) for reduce, part in zip(_REDUCE, parts, strict=True)
    )
    return active, zeros, minimum, maximum, sums, squares


def _fold_step(
    values: Sequence[tf.Tensor], shift: tf.Tensor, step: int, fold_slabs: bool = True
) -> StepReductions:
    """One step's reductions of every probe (``step`` examples at most), side by side, as
    :data:`StepReductions` describes them: one call returns what the running state needs. Slabs
    are folded (:data:`SLABS`) where ``fold_slabs`` and a probe's step holds :data:`SLAB_VALUES`."""
    shifts = tf.split(shift, [int(v.shape[-1]) for v in values])

    def slabs(v: tf.Tensor) -> int:
        return SLABS if fold_slabs and step * int(np.prod(v.shape[1:])) >= SLAB_VALUES else 1

    reduced = [_reductions(as_rows(v), s, slabs(v)) for v, s in zip(values, shifts, strict=True)]

    def side_by_side(which: int) -> tf.Tensor:
        return tf.concat([r[which] for r in reduced], 0)

    return (
        tf.stack([side_by_side(0), side_by_side(1)]),
        tf.stack([side_by_side(4), side_by_side(5)]),
        side_by_side(2),
        side_by_side(3),
    )


#: :func:`_fold_step` compiled by XLA: one call a step for every probe's reductions (a call has a fixed
#: cost of ~0.1 ms, and each TensorFlow op ~10 µs: 23 probes' six reductions and running sums as
#: separate ops cost more than their arithmetic). Shared by every pass: traced and compiled once per
#: probe shapes and step, so a model of the same shapes as one measured before (another
#: experiment's cycle 0, say) reuses its compilation. Only full steps use it (:func:`_fold`).
_xla_fold_step = tf.function(_fold_step, jit_compile=True, autograph=False)


def _fold(
    values: Sequence[tf.Tensor], shift: tf.Tensor, step: int, folding: Folding, partial: bool
) -> StepReductions:
    """A step's reductions: by the C kernel where ``folding`` is ``kernel`` (any step). Else a full
    step's (``step`` examples) in one XLA call where ``folding`` is ``xla``; where
    the last step may be ``partial`` (a pass over a number of examples ``step`` does not divide),
    that step's in plain TensorFlow. XLA compiles every new step shape, and a pruned model's shapes
    are new every cycle: compiling the last step's too cost ~4 s on mobilenet-v2-mini (23 probes)
    for a step that plain TensorFlow folds in milliseconds. A pass whose steps are all full is
    traced without that branch (~0.5 s less to trace and optimise on mobilenet-v2-mini)."""
    if folding == "kernel":
        return fold_kernel.fold(values, shift)
    if folding == "plain":
        return _fold_step(values, shift, step)
    if not partial:
        return _xla_fold_step(values, shift, step)

    return tf.cond(
        tf.shape(values[0])[0] == step,
        lambda: _xla_fold_step(values, shift, step),
        lambda: _fold_step(values, shift, step, fold_slabs=False),
    )


def step_examples(probe: keras.Model, batch_size: int, folding: Folding | None = None) -> int:
    """Examples per step of the pass: ``batch_size``, or on a machine without an accelerator fewer,
    where its largest probe's values of a step would exceed :data:`STEP_BYTES` (at least one;
    :data:`KERNEL_STEP_BYTES` where the C kernel folds them, the default where it was built). An
    accelerator keeps whole batches: there, steps of a few examples would leave it idle."""
    outputs = probe.outputs if isinstance(probe.outputs, list | tuple) else [probe.outputs]
    return _step_for(outputs, batch_size, folding or _default_folding())


def _accelerated() -> bool:
    return bool(tf.config.list_logical_devices("GPU"))


def _default_folding() -> Folding:
    return "kernel" if fold_kernel.available() and not _accelerated() else "xla"


def _step_for(outputs: Sequence[keras.KerasTensor], batch_size: int, folding: Folding) -> int:
    if _accelerated():
        return batch_size
    largest = max(4 * int(np.prod(o.shape[1:])) for o in outputs)
    limit = KERNEL_STEP_BYTES if folding == "kernel" else STEP_BYTES
    return max(1, min(batch_size, limit // largest))


def _compiled_pass(
    probe: keras.Model,
    batch_size: int,
    bins: int,
    histogram_rows: int,
    folding: Folding,
    partial: bool,
) -> Callable[[tf.Tensor], PassResult]:
    """The pass over a whole input array for one probe model.

    One ``tf.function`` runs the whole pass: a ``tf.while_loop`` folds in every step (cache-sized,
    :func:`step_examples`; the first also fixes the shifts) with one call for all probes'
    reductions (:func:`_fold`: the C kernel or XLA), so no batch returns to Python, and keeps the
    rows of every ``⌈steps / SAMPLE_STEPS⌉``-th step the histograms count; they are counted at the
    end, over the pass's range. Its input signature admits any number of examples, so it is traced
    once.
    """
    input_shape = tuple(probe.input.shape[1:])
    outputs = probe.outputs if isinstance(probe.outputs, list | tuple) else [probe.outputs]
    widths = [int(o.shape[-1]) for o in outputs]
    positions = [int(np.prod(o.shape[1:-1])) for o in outputs]
    step = step_examples(probe, batch_size, folding)
    probe_positions = tf.constant(positions, tf.int64)
    sample = HistogramSample.plan(widths, positions, step, histogram_rows)

    def forward(batch: tf.Tensor) -> list[tf.Tensor]:
        values = probe(batch, training=False)
        return list(values) if isinstance(values, list | tuple) else [values]

    @tf.function(input_signature=[tf.TensorSpec([None, *input_shape], tf.float32)], autograph=False)
    def run(x: tf.Tensor) -> PassResult:
        _TRACES[0] += 1
        total = tf.cast(tf.shape(x)[0], tf.int64)
        steps = (total + step - 1) // step
        every = sample.every(steps)
        units = sum(widths)
        state = (
            tf.zeros([len(widths)], tf.int64),  # values per unit so far, per probe
            tf.zeros([2, units], tf.int64),  # values > 0, values == 0
            tf.zeros([2, units], tf.float64),  # sums of (value - shift), of its square
            tf.fill([units], np.float32(np.inf)),  # minimum
            tf.fill([units], np.float32(-np.inf)),  # maximum
            tf.zeros([units], tf.float32),  # shift, set by the first step
        )
        samples = tf.TensorArray(tf.float32, size=0, dynamic_size=True, element_shape=[sample.size])
        real = tf.TensorArray(tf.int32, size=0, dynamic_size=True, element_shape=[len(widths)])

        def next_step(
            index: tf.Tensor, state: tuple[tf.Tensor, ...], samples: tf.TensorArray, real: tf.TensorArray
        ) -> tuple[tf.Tensor, tuple[tf.Tensor, ...], tf.TensorArray, tf.TensorArray]:
            begin = index * step
            values = forward(x[begin : begin + step])
            counted, counts, moments, minimum, maximum, carried_shift = state
            # the first step's means: every value's sums are taken less them (a constant unit's sums
            # stay 0; a large offset costs no precision)
            shift = tf.cond(
                index == 0,
                lambda: tf.concat([tf.reduce_mean(as_rows(v), axis=0) for v in values], 0),
                lambda: carried_shift,
            )
            step_counts, step_moments, step_min, step_max = _fold(values, shift, step, folding, partial)
            # a step's sums in float32 (XLA, plain) or float64 (the kernel), the pass's in float64
            state = (
                counted + tf.cast(tf.shape(values[0])[0], tf.int64) * probe_positions,
                counts + tf.cast(step_counts, tf.int64),
                moments + tf.cast(step_moments, tf.float64),
                tf.minimum(minimum, step_min),
                tf.maximum(maximum, step_max),
                shift,
            )
            kept = tf.cast(index // every, tf.int32)

            def keep() -> tuple[tf.TensorArray, tf.TensorArray]:
                step_sample, step_real = sample.keep(values)
                return samples.write(kept, step_sample), real.write(kept, step_real)

            samples, real = tf.cond(index % every == 0, keep, lambda: (samples, real))
            return index + 1, state, samples, real

        def more(index: tf.Tensor, *_: object) -> tf.Tensor:
            return index < steps

        # one step at a time: a step's activations are freed before the next one's are computed
        _, state, samples, real = tf.while_loop(
            more,
            next_step,
            (tf.constant(0, tf.int64), state, samples, real),
            parallel_iterations=1,
        )
        counted, counts, moments, minimum, maximum, shift = state
        histograms = sample.histograms(
            minimum, maximum, samples.stack(), real.stack(), bins, xla=folding != "plain"
        )
        return counted, counts, moments, minimum, maximum, shift, histograms

    return run


@dataclasses.dataclass
class _Pass:
    run: Callable[[tf.Tensor], PassResult]
    folding: Folding


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
    model; one for numbers of examples its step divides, one for the others). Its reductions run
    in the C kernel on a CPU where it was built, else in XLA; if XLA cannot compile them (or the
    histograms), the pass is rebuilt in plain TensorFlow and kept so."""
    folding = _default_folding()
    step = _step_for([model.get_layer(p).output for p in probes], batch_size, folding)
    partial = int(x.shape[0]) % step != 0
    key = (probes, batch_size, bins, histogram_rows, partial, folding)
    passes = _PASSES.setdefault(model, {})

    def build(folding: Folding) -> _Pass:
        probe = _probe_outputs(model, probes)
        return _Pass(_compiled_pass(probe, batch_size, bins, histogram_rows, folding, partial), folding)

    if key not in passes:
        passes[key] = build(folding)
    compiled = passes[key]
    try:
        return compiled.run(x)
    except _NOT_COMPILED:
        if compiled.folding == "plain":
            raise
        passes[key] = build("plain")
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
    counted, counts, moments, minimum, maximum, shift, histograms = (
        np.asarray(t) for t in _run_pass(model, probes, x_tensor, batch_size, bins, histogram_rows)
    )
    ends = np.cumsum([int(model.get_layer(probe).output.shape[-1]) for probe in probes])[:-1]
    per_probe = zip(
        probes,
        counted,
        *(np.split(t, ends, axis=-1) for t in (counts, moments, minimum, maximum, shift)),
        np.split(histograms, ends),
        strict=True,
    )
    measured: dict[str, LayerStats] = {}
    for probe, count, (active, zeros), (s1, s2), low, high, probe_shift, histogram in per_probe:
        outputs = int(count)
        offset = s1 / max(outputs, 1)  # mean - shift
        measured[probe] = LayerStats(
            layer=probe,
            outputs=outputs,
            active=active.astype(np.int64),
            zeros=zeros.astype(np.int64),
            mean=probe_shift.astype(np.float64) + offset,
            variance=np.maximum(s2 / max(outputs, 1) - np.square(offset), 0.0),
            minimum=low.astype(np.float64),
            maximum=high.astype(np.float64),
            histogram=histogram.astype(np.int64),
            bin_edges=bin_edges(float(low.min()), float(high.max()), bins),
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
