"""The rows a statistics pass keeps for its histograms, and the histograms counted from them.

A pass keeps a sample of every probe's rows (a row: one example at one position, all of a layer's
units) on some of its steps, and counts them in fixed bins at the end, once the whole pass's range
is known: every unit's bins run from its layer's lowest to its highest value in the pass, so no value
falls outside them. Which steps keep rows, and how many, depends only on the pass's shapes, so a pass
traced once keeps the same sample on any number of examples.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

#: Rows a pass's histograms count by default: with 16,384 rows sampled, a bin's share of a unit's
#: values has a standard error of at most 0.4 percentage points (√(¼ / 16,384)), and the cost no longer
#: grows with the examples measured.
HISTOGRAM_ROWS = 16_384
#: Bytes the histograms' sample of one pass may hold, all probes together: a model with more than
#: 1,024 units in its probes samples fewer rows than :data:`HISTOGRAM_ROWS` (at least one).
SAMPLE_BYTES = 64 * 2**20
#: Steps of a pass that keep rows for its histograms, at most: every ⌈steps / 64⌉-th step, each keeping
#: ⌈rows / 64⌉ of each probe's rows (all, where it has fewer), spread evenly over its examples and
#: positions. Keeping rows on every step cost more than the reductions themselves on
#: mobilenet-v2-mini (23 probes, 100 steps: a few operations per probe and step).
SAMPLE_STEPS = 64


def as_rows(values: tf.Tensor) -> tf.Tensor:
    """A probe's values as rows (one example at one position) × units, in float32."""
    return tf.reshape(tf.cast(values, tf.float32), [-1, values.shape[-1]])


def sample_rows(widths: Sequence[int], histogram_rows: int) -> int:
    """Rows the histograms of probes ``widths`` units wide sample in one pass: ``histogram_rows``, or
    fewer where they would hold more than :data:`SAMPLE_BYTES` (at least one)."""
    return max(1, min(histogram_rows, SAMPLE_BYTES // (4 * max(1, sum(widths)))))


def bin_range(low: float, high: float) -> tuple[float, float]:
    """The histogram range of a layer whose values run from ``low`` to ``high`` (one unit wide
    around a constant layer)."""
    if high - low < 1e-6:
        return low - 0.5, high + 0.5
    return low, high


def bin_edges(low: float, high: float, bins: int) -> np.ndarray:
    """The ``bins + 1`` edges of a layer whose values run from ``low`` to ``high``."""
    first, last = bin_range(low, high)
    return np.linspace(first, last, bins + 1)


def _graph_bins(low32: tf.Tensor, high32: tf.Tensor, bins: int) -> tuple[tf.Tensor, tf.Tensor]:
    """:func:`bin_range` in the graph, per layer: the float32 low edge and bin width."""
    low, high = tf.cast(low32, tf.float64), tf.cast(high32, tf.float64)
    narrow = high - low < 1e-6
    first = tf.where(narrow, low - 0.5, low)
    last = tf.where(narrow, high + 0.5, high)
    return tf.cast(first, tf.float32), tf.cast((last - first) / bins, tf.float32)


def _spread_rows(values: tf.Tensor, rows: int) -> tuple[tf.Tensor, tf.Tensor]:
    """``rows`` rows of a probe's values of one step, spread evenly over them (every ⌊available /
    rows⌋-th row), flattened; where the step has fewer, all of them and copies of its last (padding),
    and how many are real."""
    flat = as_rows(values)
    available = tf.shape(flat)[0]
    stride = tf.maximum(1, available // rows)
    picked = tf.range(rows) * stride
    real = tf.reduce_sum(tf.cast(picked < available, tf.int32))
    return tf.reshape(tf.gather(flat, tf.minimum(picked, available - 1)), [-1]), real


def _bin_index(
    samples: tf.Tensor,
    real: tf.Tensor,
    low: tf.Tensor,
    width: tf.Tensor,
    layout: tuple[tf.Tensor, tf.Tensor, tf.Tensor],
    bins: int,
    units: int,
) -> tf.Tensor:
    """Each kept value's bin among every unit's bins side by side (int32, kept steps × flattened
    rows; ``layout``: each value's probe, row and unit); padding rows go to one bin past the last.
    Elementwise: XLA makes it one loop."""
    probe, row, unit = layout
    # the highest value lands on the last edge: it counts in the last bin
    position = (samples - tf.gather(low, probe)) / tf.gather(width, probe)
    index = tf.clip_by_value(tf.cast(tf.floor(position), tf.int32), 0, bins - 1) + unit * bins
    return tf.where(row < tf.gather(real, probe, axis=1), index, units * bins)


_xla_bin_index = tf.function(_bin_index, jit_compile=True, autograph=False)


@dataclasses.dataclass(frozen=True)
class HistogramSample:
    """What one pass keeps of its probes' rows: ``rows[p]`` rows of probe ``p`` on each kept step,
    and, for each value of a kept step's flattened sample, its probe, its row among the probe's kept
    rows and its unit (every probe's units side by side), and each unit's probe."""

    rows: tuple[int, ...]
    probe: tf.Tensor
    row: tf.Tensor
    unit: tf.Tensor
    unit_probe: tf.Tensor

    @classmethod
    def plan(
        cls, widths: Sequence[int], positions: Sequence[int], step: int, histogram_rows: int
    ) -> HistogramSample:
        """The sample of a pass over probes ``widths`` units wide at ``positions`` positions, in
        steps of ``step`` examples, counting about ``histogram_rows`` rows."""
        per_step = -(-sample_rows(widths, histogram_rows) // SAMPLE_STEPS)
        rows = tuple(max(1, min(step * p, per_step)) for p in positions)
        shapes = list(zip(rows, widths, strict=True))  # each probe's kept rows × units
        first_unit = np.cumsum([0, *widths[:-1]])
        probe = np.concatenate([np.full(kept * width, p) for p, (kept, width) in enumerate(shapes)])
        row = np.concatenate([np.repeat(np.arange(kept), width) for kept, width in shapes])
        unit = np.concatenate(
            [
                np.tile(np.arange(width), kept) + first
                for (kept, width), first in zip(shapes, first_unit, strict=True)
            ]
        )
        unit_probe = np.repeat(np.arange(len(widths)), widths)
        return cls(rows, *(tf.constant(a, tf.int32) for a in (probe, row, unit, unit_probe)))

    @property
    def size(self) -> int:
        """Values a kept step's flattened sample holds."""
        return int(self.probe.shape[0])

    @staticmethod
    def every(steps: tf.Tensor) -> tf.Tensor:
        """Of a pass of ``steps`` steps, every how many-th keeps rows (the first always does)."""
        return (steps + SAMPLE_STEPS - 1) // SAMPLE_STEPS

    def keep(self, values: Sequence[tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        """One step's kept rows of every probe (its values as the probes output them), flattened one
        after another, and how many of each probe's are real (int32)."""
        kept = [_spread_rows(v, rows) for v, rows in zip(values, self.rows, strict=True)]
        return tf.concat([flat for flat, _ in kept], 0), tf.stack([real for _, real in kept])

    def histograms(
        self,
        minimum: tf.Tensor,
        maximum: tf.Tensor,
        samples: tf.Tensor,
        real: tf.Tensor,
        bins: int,
        xla: bool,
    ) -> tf.Tensor:
        """Every unit's histogram (units × bins, int64) of the kept steps' samples (kept steps ×
        :attr:`size`, and how many of each probe's rows are real), in ``bins`` bins from its probe's
        lowest to its highest value (every unit's ``minimum`` and ``maximum`` over the whole pass):
        one computation for all probes."""
        low, width = _graph_bins(
            tf.math.segment_min(minimum, self.unit_probe), tf.math.segment_max(maximum, self.unit_probe), bins
        )
        units = int(self.unit_probe.shape[0])
        index = (_xla_bin_index if xla else _bin_index)(
            samples, real, low, width, (self.probe, self.row, self.unit), bins, units
        )
        counts = tf.math.bincount(tf.reshape(index, [-1]), minlength=units * bins + 1, dtype=tf.int64)
        return tf.reshape(counts[: units * bins], [units, bins])
