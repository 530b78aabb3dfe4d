"""Dense versus sparse execution of one dense layer across kernel densities, and the crossover.

Connection pruning only saves time where a sparse kernel beats the dense one (Çallı §2.2.1). For a
layer of ``fan_in`` inputs and ``units`` outputs, each sweep times the dense product and a sparse one
at every density, interleaved (every round visits every density, dense and sparse back to back in
alternating order), and reports the median per-round ratio dense / sparse. The crossover is the highest
density at which the sparse form is still faster by more than a noise margin.

Two back ends:

- :func:`sweep_tensorflow`: ``tf.linalg.matmul(x, W)`` against ``tf.sparse.sparse_dense_matmul`` with
  Wᵀ stored as a ``tf.SparseTensor`` (the kernel iterates over the sparse operand's rows, so the layer
  runs in transposed layout: yᵀ = Wᵀ xᵀ; the transposes are charged to neither side). Both run
  eagerly, so each includes one op dispatch (tens of µs) — the same for both.
- :func:`sweep_litert`: a one-layer TFLite model converted normally against one converted with
  ``sparse_weights`` (TFLite's sparse storage), both under the LiteRT interpreter as shipped. What runs
  depends on how the converter stores the kernel: where enough 1×4 blocks (4 consecutive inputs of one
  unit) are all zero it keeps the kernel block-sparse and LiteRT's builtin sparse FULLY_CONNECTED
  kernel runs it (not XNNPACK); otherwise it stores the kernel in a random-sparse format that LiteRT
  densifies when it prepares the model, so it runs dense. XNNPACK's own sparse inference covers only
  CNNs of 1×1 convolutions behind a 3-channel 3×3 stride-2 stem (Fast Sparse ConvNets), not dense
  layers. ``block_rows=4`` draws the non-zeros in such 1×4 blocks, as block-structured pruning would.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Densities from 1 % to 100 %, denser near the low end where crossovers lie.
DEFAULT_DENSITIES: tuple[float, ...] = (0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3, 0.5, 0.7, 1.0)
#: Sparse counts as faster only when its median speed-up exceeds 1 + this (timing noise is a few %).
DEFAULT_MARGIN = 0.05
#: How many times the typical float32 rounding error of a product a back end's result may be off by.
ROUNDING_SLACK = 4.0


@dataclass(frozen=True)
class DensityTiming:
    """Dense and sparse timing of one layer at one kernel density.

    Attributes:
        density: fraction of non-zero kernel weights.
        nonzeros: non-zero weights.
        dense_us, sparse_us: median time of one product, µs.
        speedup: median over rounds of dense / sparse time (> 1: sparse is faster).
        dense_bytes, sparse_bytes: flatbuffer sizes (LiteRT sweep only).
    """

    density: float
    nonzeros: int
    dense_us: float
    sparse_us: float
    speedup: float
    dense_bytes: int | None = None
    sparse_bytes: int | None = None


@dataclass(frozen=True)
class SparseSweep:
    """One layer shape timed dense and sparse across densities.

    Attributes:
        backend: "tensorflow" or "litert".
        fan_in, units: the kernel is fan_in × units.
        batch: examples per product.
        block_rows: non-zeros come in blocks of this many consecutive inputs of one unit.
        runs, warmup: timed and untimed rounds.
        points: one timing per density, densities ascending.
    """

    backend: str
    fan_in: int
    units: int
    batch: int
    block_rows: int
    runs: int
    warmup: int
    points: tuple[DensityTiming, ...]

    @property
    def crossover(self) -> float | None:
        """:func:`crossover_density` with the default margin."""
        return crossover_density(self.points)

    def summary(self) -> dict[str, Any]:
        """JSON-ready description of the sweep."""
        return {
            "backend": self.backend,
            "fan_in": self.fan_in,
            "units": self.units,
            "batch": self.batch,
            "block_rows": self.block_rows,
            "runs": self.runs,
            "warmup": self.warmup,
            "crossover_density": self.crossover,
            "points": [vars(point) for point in self.points],
        }


def crossover_density(points: Sequence[DensityTiming], margin: float = DEFAULT_MARGIN) -> float | None:
    """The highest density at which the sparse product is still faster.

    Args:
        points: timings at several densities.
        margin: sparse is faster where its speed-up exceeds 1 + margin, so that two equally fast
            forms do not produce a crossover by noise. Default 0.05.

    Returns:
        That density, or None when the sparse product is never faster.
    """
    faster = [point.density for point in points if point.speedup > 1.0 + margin]
    return max(faster) if faster else None


def sparse_kernel(
    fan_in: int, units: int, density: float, rng: np.random.Generator, block_rows: int = 1
) -> np.ndarray:
    """A float32 kernel with about ``density * size`` normal non-zeros at random places.

    Args:
        fan_in, units: the kernel's shape.
        density: fraction of non-zeros, in (0, 1].
        rng: where the positions and values come from.
        block_rows: the non-zeros fill ``round(density * size / block_rows)`` (at least one) blocks of
            this many consecutive inputs of one unit, so the count is exact for 1. Default 1.

    Returns:
        The kernel, shape (fan_in, units).

    Raises:
        ValueError: ``density`` is outside (0, 1], or ``block_rows`` does not divide ``fan_in``.
    """
    if not 0.0 < density <= 1.0:
        raise ValueError(f"density must be in (0, 1], got {density}")
    if block_rows < 1 or fan_in % block_rows:
        raise ValueError(f"block_rows must be a positive divisor of fan_in ({fan_in}), got {block_rows}")
    blocks = (fan_in // block_rows) * units
    count = max(1, int(round(density * blocks)))
    chosen = np.zeros(blocks, dtype=bool)
    chosen[rng.choice(blocks, size=count, replace=False)] = True
    mask = np.repeat(chosen.reshape(fan_in // block_rows, units), block_rows, axis=0)
    values = rng.standard_normal((fan_in, units)).astype(np.float32)
    return np.where(mask, values, np.float32(0.0)).astype(np.float32)


def product_tolerance(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """How far each element of a float32 ``x @ kernel`` may fairly be from the exact product.

    Rounding in a float32 sum of ``K`` terms grows with the size of the partial sums and, for errors of
    random sign, with √K: the bound is ``ROUNDING_SLACK · eps32 · √K · (|x| @ |kernel|)``. It scales with
    the reduction length and the terms' magnitude (a fixed 1e-4 does not: at ~5,000 inputs the products
    of two correct back ends differ by more), yet stays far below what a broken set-up (a transposed
    or misplaced kernel, a lost weight) gets wrong.

    Args:
        x: the inputs, shape (batch, K).
        kernel: the kernel, shape (K, units).

    Returns:
        The tolerance per output, shape (batch, units), float64.
    """
    reduction = x.shape[-1]
    scale = np.abs(x).astype(np.float64) @ np.abs(kernel).astype(np.float64)
    return ROUNDING_SLACK * float(np.finfo(np.float32).eps) * np.sqrt(reduction) * scale


def check_product(name: str, value: np.ndarray, x: np.ndarray, kernel: np.ndarray, density: float) -> None:
    """Refuse a back end's ``x @ kernel`` further from the exact (float64) product than rounding explains.

    Args:
        name: the back end's side, named in the error (``dense``, ``sparse``).
        value: its product, shape (batch, units).
        x, kernel: the operands.
        density: the kernel's density, named in the error.

    Raises:
        RuntimeError: some element is off by more than :func:`product_tolerance` (or is not finite).
    """
    exact = x.astype(np.float64) @ kernel.astype(np.float64)
    error = np.abs(np.asarray(value, dtype=np.float64) - exact)
    tolerance = product_tolerance(x, kernel)
    if not np.all(error <= tolerance):
        worst = float(np.nanmax(np.where(np.isfinite(error), error / np.maximum(tolerance, 1e-300), np.inf)))
        raise RuntimeError(
            f"{name} product disagrees with NumPy at density {density} "
            f"(off by {worst:.3g} times the float32 rounding tolerance)"
        )


def _check_densities(densities: Sequence[float]) -> list[float]:
    ordered = sorted({float(d) for d in densities})
    if not ordered:
        raise ValueError("no densities to time")
    for density in ordered:
        if not 0.0 < density <= 1.0:
            raise ValueError(f"density must be in (0, 1], got {density}")
    return ordered


def _interleaved(
    pairs: Sequence[tuple[Callable[[], object], Callable[[], object]]], runs: int, warmup: int
) -> list[tuple[list[float], list[float]]]:
    """Per pair, (dense µs, sparse µs) of every timed round; pairs visited round-robin, order alternating."""
    if runs < 1 or warmup < 0:
        raise ValueError(f"runs must be at least 1 and warmup at least 0, got {runs} and {warmup}")
    samples: list[tuple[list[float], list[float]]] = [([], []) for _ in pairs]
    clock = time.perf_counter_ns
    for round_index in range(warmup + runs):
        first = round_index % len(pairs)
        for index in [*range(first, len(pairs)), *range(first)]:
            dense, sparse = pairs[index]
            order = ((0, dense), (1, sparse)) if round_index % 2 == 0 else ((1, sparse), (0, dense))
            for side, action in order:
                started = clock()
                action()
                elapsed = (clock() - started) / 1000.0
                if round_index >= warmup:
                    samples[index][side].append(elapsed)
    return samples


def _timing(density: float, nonzeros: int, dense: Sequence[float], sparse: Sequence[float]) -> DensityTiming:
    return DensityTiming(
        density=density,
        nonzeros=nonzeros,
        dense_us=float(np.median(dense)),
        sparse_us=float(np.median(sparse)),
        speedup=float(statistics.median(d / s for d, s in zip(dense, sparse, strict=True))),
    )


def sweep_tensorflow(
    fan_in: int = 784,
    units: int = 300,
    batch: int = 1,
    densities: Sequence[float] = DEFAULT_DENSITIES,
    runs: int = 200,
    warmup: int = 20,
    seed: int = 0,
) -> SparseSweep:
    """Time ``tf.linalg.matmul`` against ``tf.sparse.sparse_dense_matmul`` for one layer shape.

    TensorFlow's intra-op thread count is whatever the process set before its first op (see
    ``tf.config.threading``); the benchmarks set 1 to compare per core.

    Args:
        fan_in: inputs of the layer. Default 784.
        units: outputs of the layer. Default 300.
        batch: examples per product. Default 1.
        densities: kernel densities in (0, 1]. Default :data:`DEFAULT_DENSITIES`.
        runs: timed rounds. Default 200.
        warmup: untimed rounds first. Default 20.
        seed: for the kernels and the input. Default 0.

    Returns:
        The sweep, densities ascending.

    Raises:
        ValueError: a density outside (0, 1], ``runs`` < 1 or ``warmup`` < 0.
        RuntimeError: the sparse and dense products disagree (a broken set-up, never a timing).
    """
    import tensorflow as tf

    ordered = _check_densities(densities)
    rng = np.random.default_rng(seed)
    x_np = rng.random((batch, fan_in), dtype=np.float32)
    x = tf.constant(x_np)
    x_t = tf.constant(np.ascontiguousarray(x_np.T))
    pairs: list[tuple[Callable[[], object], Callable[[], object]]] = []
    nonzeros: list[int] = []
    for density in ordered:
        kernel_np = sparse_kernel(fan_in, units, density, rng)
        kernel = tf.constant(kernel_np)
        kernel_t = tf.sparse.from_dense(tf.constant(np.ascontiguousarray(kernel_np.T)))

        def dense(kernel: Any = kernel) -> object:
            return tf.linalg.matmul(x, kernel)

        def sparse(kernel_t: Any = kernel_t) -> object:
            return tf.sparse.sparse_dense_matmul(kernel_t, x_t)

        for name, value in (("dense", np.asarray(dense())), ("sparse", np.asarray(sparse()).T)):
            check_product(name, value, x_np, kernel_np, density)
        pairs.append((dense, sparse))
        nonzeros.append(int(np.count_nonzero(kernel_np)))
    samples = _interleaved(pairs, runs, warmup)
    points = tuple(
        _timing(density, count, dense_us, sparse_us)
        for density, count, (dense_us, sparse_us) in zip(ordered, nonzeros, samples, strict=True)
    )
    return SparseSweep("tensorflow", fan_in, units, batch, 1, runs, warmup, points)


def sweep_litert(
    fan_in: int = 784,
    units: int = 300,
    batch: int = 1,
    densities: Sequence[float] = DEFAULT_DENSITIES,
    runs: int = 200,
    warmup: int = 20,
    threads: int = 1,
    block_rows: int = 1,
    seed: int = 0,
) -> SparseSweep:
    """Time a one-layer TFLite model stored dense against the same stored sparse, under LiteRT.

    All 2 × len(densities) models are timed in one interleaved ``latency.benchmark_models`` call.

    Args:
        fan_in: inputs of the layer. Default 784.
        units: outputs of the layer. Default 300.
        batch: examples per invocation. Default 1.
        densities: kernel densities in (0, 1]. Default :data:`DEFAULT_DENSITIES`.
        runs: timed rounds. Default 200.
        warmup: untimed rounds first. Default 20.
        threads: interpreter threads. Default 1.
        block_rows: see :func:`sparse_kernel`; 4 matches TFLite's 1×4 sparse blocks. Default 1.
        seed: for the kernels and the input. Default 0.

    Returns:
        The sweep, densities ascending, with both flatbuffers' sizes.

    Raises:
        ValueError: a density outside (0, 1], ``block_rows`` not dividing ``fan_in``, ``runs`` < 1 or
            ``warmup`` < 0.
        ConversionError: the converter refused a model.
    """
    import keras

    from worker.engine.latency import benchmark_models, paired_speedup
    from worker.engine.tflite import convert

    ordered = _check_densities(densities)
    rng = np.random.default_rng(seed)
    x = rng.random((batch, fan_in), dtype=np.float32)
    models: dict[str, bytes] = {}
    nonzeros: list[int] = []
    for density in ordered:
        kernel = sparse_kernel(fan_in, units, density, rng, block_rows)
        inputs = keras.Input((fan_in,), name="input")
        layer = keras.layers.Dense(units, use_bias=False, name="layer")
        model = keras.Model(inputs, layer(inputs), name=f"dense_{density:g}")
        layer.set_weights([kernel])
        models[f"dense@{density:g}"] = convert(model, "float32")
        models[f"sparse@{density:g}"] = convert(model, "float32", sparse_weights=True)
        nonzeros.append(int(np.count_nonzero(kernel)))
    stats = benchmark_models(models, x, runs=runs, warmup=warmup, threads=threads)
    points = []
    for density, count in zip(ordered, nonzeros, strict=True):
        dense, sparse = stats[f"dense@{density:g}"], stats[f"sparse@{density:g}"]
        points.append(
            DensityTiming(
                density=density,
                nonzeros=count,
                dense_us=dense.median_us,
                sparse_us=sparse.median_us,
                speedup=paired_speedup(dense, sparse),
                dense_bytes=dense.model_bytes,
                sparse_bytes=sparse.model_bytes,
            )
        )
    return SparseSweep("litert", fan_in, units, batch, block_rows, runs, warmup, tuple(points))
