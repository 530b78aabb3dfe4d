"""Dense vs sparse sweeps: kernels, crossover rule, interleaving and the shape of the results.

No test asserts a speed: timings only have to be positive and complete.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from worker.engine import sparse_bench
from worker.engine.sparse_bench import (
    DensityTiming,
    crossover_density,
    sparse_kernel,
    sweep_litert,
    sweep_tensorflow,
)


def _point(density: float, speedup: float) -> DensityTiming:
    return DensityTiming(density=density, nonzeros=1, dense_us=1.0, sparse_us=1.0, speedup=speedup)


def test_sparse_kernel_has_exactly_the_asked_non_zeros() -> None:
    kernel = sparse_kernel(784, 300, 0.03, np.random.default_rng(0))
    assert kernel.shape == (784, 300)
    assert kernel.dtype == np.float32
    assert np.count_nonzero(kernel) == round(0.03 * 784 * 300)


def test_sparse_kernel_blocks_run_along_the_inputs_of_one_unit() -> None:
    kernel = sparse_kernel(16, 8, 0.25, np.random.default_rng(1), block_rows=4)
    blocks = (kernel != 0).reshape(4, 4, 8)  # (block, row in block, unit)
    assert np.all(blocks.all(axis=1) == blocks.any(axis=1))  # each block is all zero or all non-zero
    assert int(blocks.any(axis=1).sum()) == 8  # a quarter of the 32 blocks


@pytest.mark.parametrize(("density", "block_rows"), [(0.0, 1), (1.5, 1), (0.5, 3), (0.5, 0)])
def test_sparse_kernel_refuses_bad_arguments(density: float, block_rows: int) -> None:
    with pytest.raises(ValueError):
        sparse_kernel(16, 4, density, np.random.default_rng(0), block_rows=block_rows)


def test_crossover_is_the_highest_density_beyond_the_noise_margin() -> None:
    points = [_point(0.01, 3.0), _point(0.02, 1.5), _point(0.05, 1.03), _point(0.1, 0.5)]
    assert crossover_density(points) == 0.02
    assert crossover_density(points, margin=0.0) == 0.05
    assert crossover_density([_point(0.01, 0.9), _point(0.5, 1.2)]) == 0.5  # not assumed monotone
    assert crossover_density([_point(0.01, 0.9), _point(1.0, 1.01)]) is None


def test_pairs_are_visited_round_robin_with_alternating_order() -> None:
    log: list[str] = []
    pairs = [(lambda n=n: log.append(f"{n}d"), lambda n=n: log.append(f"{n}s")) for n in "ab"]
    samples = sparse_bench._interleaved(pairs, runs=2, warmup=1)
    assert log == ["ad", "as", "bd", "bs", "bs", "bd", "as", "ad", "ad", "as", "bd", "bs"]
    assert [(len(dense), len(sparse)) for dense, sparse in samples] == [(2, 2), (2, 2)]


def test_tensorflow_sweep_reports_every_density() -> None:
    sweep = sweep_tensorflow(fan_in=32, units=16, batch=4, densities=(1.0, 0.1), runs=5, warmup=1)
    assert (sweep.backend, sweep.fan_in, sweep.units, sweep.batch, sweep.runs) == ("tensorflow", 32, 16, 4, 5)
    assert [p.density for p in sweep.points] == [0.1, 1.0]
    assert [p.nonzeros for p in sweep.points] == [round(0.1 * 512), 512]
    for point in sweep.points:
        assert point.dense_us > 0 and point.sparse_us > 0 and point.speedup > 0
        assert point.dense_bytes is None
    json.dumps(sweep.summary())


def test_litert_sweep_reports_both_file_sizes() -> None:
    sweep = sweep_litert(fan_in=64, units=32, densities=(0.02, 1.0), runs=5, warmup=1, block_rows=4)
    sparse_point, dense_point = sweep.points
    assert sweep.block_rows == 4
    assert sparse_point.sparse_bytes is not None and sparse_point.dense_bytes is not None
    assert sparse_point.sparse_bytes < sparse_point.dense_bytes
    assert dense_point.sparse_bytes == dense_point.dense_bytes  # nothing to compress at full density
    for point in sweep.points:
        assert point.dense_us > 0 and point.sparse_us > 0 and point.speedup > 0
    json.dumps(sweep.summary())


def test_sweeps_refuse_bad_densities() -> None:
    with pytest.raises(ValueError):
        sweep_tensorflow(fan_in=8, units=4, densities=(), runs=1)
    with pytest.raises(ValueError):
        sweep_tensorflow(fan_in=8, units=4, densities=(0.0,), runs=1)
