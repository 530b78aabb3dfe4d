"""The crossover's correctness check scales with the reduction length: two correct float32 products of
thousands of inputs pass, a broken one does not (no TensorFlow needed: the float32 products are NumPy's)."""

from __future__ import annotations

import numpy as np
import pytest

from worker.engine.sparse_bench import check_product, product_tolerance, sparse_kernel

#: Inputs of the layer: past the ~5,000 at which the fixed 1e-4 tolerance failed.
K = 8192


def _cancelling(rng: np.random.Generator, units: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Operands whose exact product is 0 while the float32 partial sums grow large: the second half of
    the inputs repeats the first and the second half of each kernel column negates the first."""
    half = rng.random((1, K // 2), dtype=np.float32)
    column = (100 * rng.standard_normal((K // 2, units))).astype(np.float32)
    return np.concatenate([half, half], axis=1), np.concatenate([column, -column], axis=0)


def _sequential(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``x @ kernel`` summed term by term in float32 (the order a simple kernel uses)."""
    terms = x[0][:, None] * kernel
    return np.cumsum(terms, axis=0, dtype=np.float32)[-1][None, :]


def test_a_correct_float32_product_of_a_long_reduction_passes() -> None:
    x, kernel = _cancelling(np.random.default_rng(0))
    value = _sequential(x, kernel)

    # the old rule (fixed 1e-4 against NumPy's float32 product) called this product wrong
    assert not np.allclose(value, x @ kernel, rtol=1e-4, atol=1e-4)
    check_product("sparse", value, x, kernel, 1.0)
    check_product("dense", x @ kernel, x, kernel, 1.0)


def test_random_kernels_of_every_size_pass_both_summation_orders() -> None:
    rng = np.random.default_rng(1)
    for fan_in in (1, 3, 784, 5000, K):
        x = rng.random((2, fan_in), dtype=np.float32)
        kernel = sparse_kernel(fan_in, 8, 1.0, rng)
        for value in (x @ kernel, np.concatenate([_sequential(x[i : i + 1], kernel) for i in range(2)])):
            check_product("dense", value, x, kernel, 1.0)


@pytest.mark.parametrize("fault", ["lost-weight", "columns-swapped", "not-finite"])
def test_a_broken_product_still_fails(fault: str) -> None:
    rng = np.random.default_rng(2)
    x = rng.random((1, K), dtype=np.float32)
    kernel = sparse_kernel(K, 4, 1.0, rng)
    broken = kernel.copy()
    if fault == "lost-weight":
        broken[int(np.argmax(np.abs(kernel[:, 0]))), 0] = 0.0
    elif fault == "columns-swapped":
        broken = kernel[:, ::-1]
    value = (x @ broken).astype(np.float32)
    if fault == "not-finite":
        value[0, 1] = np.nan

    with pytest.raises(RuntimeError, match="disagrees with NumPy at density 0.5"):
        check_product("sparse", value, x, kernel, 0.5)


def test_the_tolerance_grows_with_the_reduction_and_the_magnitude() -> None:
    rng = np.random.default_rng(3)
    x = rng.random((1, K), dtype=np.float32)
    kernel = sparse_kernel(K, 2, 1.0, rng)

    short = product_tolerance(x[:, :100], kernel[:100])
    long = product_tolerance(x, kernel)

    assert np.all(long > short)
    np.testing.assert_allclose(product_tolerance(x, 10 * kernel), 10 * long)
    assert product_tolerance(x, np.zeros_like(kernel)).max() == 0.0
