"""A statistics-pass step's per-unit reductions on a CPU, by the C kernel of ``fold_rows.c``.

XLA compiles the six reductions (values > 0 and == 0, minimum, maximum, sums of value - shift and of
its square) into loops that read a step's values several times; the kernel reads each value once,
keeping a tile of units' six results in registers (the reductions of one mobilenet-v2-mini step of
20 examples, 5.4 M values, 1 thread: ~8 ms by XLA, ~1.7 ms by the kernel on the machine of
docs/results.md §5).
It is built with the package (``setup.py``, optional: an install without a C compiler goes on
without it); :func:`available` says whether it was. The pass calls it through one
``tf.numpy_function`` per step, which copies nothing on a CPU; with an accelerator the values live on
the device, so the pass keeps XLA there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from types import ModuleType

import numpy as np
import tensorflow as tf

from worker.engine.cores import machine_cores

try:
    import worker.engine._fold_rows as _built
except ImportError:  # not built: no C compiler where the package was installed
    _KERNEL: ModuleType | None = None
else:
    _KERNEL = _built


_SWITCHED_OFF = [0]


def available() -> bool:
    """Whether the kernel was built with this install (and is not :func:`switched_off`)."""
    return _KERNEL is not None and not _SWITCHED_OFF[0]


@contextlib.contextmanager
def switched_off() -> Iterator[None]:
    """Statistics passes run inside make their reductions in XLA, as without the kernel (to compare
    the two, or to sidestep the kernel)."""
    _SWITCHED_OFF[0] += 1
    try:
        yield
    finally:
        _SWITCHED_OFF[0] -= 1


def threads() -> int:
    """Threads the kernel shares a step's units among: TensorFlow's intra-op threads, as the
    forward pass uses them (the cores this process may use where TensorFlow chooses)."""
    return tf.config.threading.get_intra_op_parallelism_threads() or machine_cores()


def fold_arrays(
    values: Sequence[np.ndarray], shift: np.ndarray, threads: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One step's reductions of every probe's ``values`` (examples × … × units, float32), units
    side by side: values > 0 and == 0 (2 × units, int32), sums of (value - shift) and of its square
    (2 × units, float64), minimum and maximum (float32; NaN where a unit saw a NaN), made by up to
    ``threads`` threads.

    Raises:
        RuntimeError: the kernel was not built (see :func:`available`).
        ValueError: the probes' units do not add up to the shift's.
    """
    if _KERNEL is None:
        raise RuntimeError("the statistics kernel (worker/engine/fold_rows.c) was not built")
    shift = np.ascontiguousarray(shift, np.float32)
    units = shift.shape[0]
    counts = np.empty((2, units), np.int32)
    moments = np.empty((2, units), np.float64)
    minimum = np.empty(units, np.float32)
    maximum = np.empty(units, np.float32)
    _KERNEL.fold(
        [np.ascontiguousarray(probe, np.float32) for probe in values],
        [probe.shape[-1] for probe in values],
        shift,
        counts[0],
        counts[1],
        minimum,
        maximum,
        moments[0],
        moments[1],
        threads,
    )
    return counts, moments, minimum, maximum


def fold(values: Sequence[tf.Tensor], shift: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """:func:`fold_arrays` as one op of a traced pass (any number of examples per step), on
    :func:`threads` threads."""
    sharing = threads()

    def run(*arrays: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return fold_arrays(arrays[:-1], arrays[-1], sharing)

    counts, moments, minimum, maximum = tf.numpy_function(
        run, [*values, shift], [tf.int32, tf.float64, tf.float32, tf.float32], stateful=False
    )
    units = int(shift.shape[0])
    counts.set_shape([2, units])
    moments.set_shape([2, units])
    minimum.set_shape([units])
    maximum.set_shape([units])
    return counts, moments, minimum, maximum
