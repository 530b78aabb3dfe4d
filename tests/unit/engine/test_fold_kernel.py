"""The statistics pass's C kernel (worker/engine/fold_rows.c) against NumPy, and the pass's use of it."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from prunespec.presets import preset
from worker.engine import fold_kernel
from worker.engine import stats as stats_module
from worker.engine.build import build_model
from worker.engine.stats import measure

pytestmark = pytest.mark.usefixtures("built_fold_kernel")


def _expected(values: np.ndarray, shift: np.ndarray) -> dict[str, np.ndarray]:
    rows = values.reshape(-1, values.shape[-1]).astype(np.float64)
    shifted = rows - shift.astype(np.float64)
    return {
        "active": (rows > 0).sum(0),
        "zeros": (rows == 0).sum(0),
        "minimum": rows.min(0),
        "maximum": rows.max(0),
        "sums": shifted.sum(0),
        "squares": np.square(shifted).sum(0),
    }


def _check(values: list[np.ndarray], shift: np.ndarray, threads: int = 1) -> None:
    counts, moments, minimum, maximum = fold_kernel.fold_arrays(values, shift, threads)
    ends = np.cumsum([v.shape[-1] for v in values])[:-1]
    parts = zip(
        values,
        np.split(shift, ends),
        *(np.split(a, ends, axis=-1) for a in (counts, moments, minimum, maximum)),
        strict=True,
    )
    for probe, probe_shift, (active, zeros), (sums, squares), low, high in parts:
        expected = _expected(probe, probe_shift)
        np.testing.assert_array_equal(active, expected["active"])
        np.testing.assert_array_equal(zeros, expected["zeros"])
        np.testing.assert_array_equal(low, expected["minimum"])
        np.testing.assert_array_equal(high, expected["maximum"])
        # float32 sums over blocks of 64 rows, added in float64: each block errs by at most
        # 64 float32 roundings of its running sum
        block_error = 64 * np.finfo(np.float32).eps
        magnitude = np.abs(probe.reshape(-1, probe.shape[-1]) - probe_shift).sum(0)
        np.testing.assert_allclose(sums, expected["sums"], rtol=0, atol=block_error * magnitude.max() + 1e-9)
        np.testing.assert_allclose(squares, expected["squares"], rtol=block_error, atol=1e-9)


@pytest.mark.parametrize("units", [1, 15, 16, 17, 40])
@pytest.mark.parametrize("rows", [1, 63, 64, 65, 1100])
def test_one_probe_matches_numpy(units: int, rows: int) -> None:
    rng = np.random.default_rng(units * 10_000 + rows)
    values = rng.normal(0, 2, (rows, units)).astype(np.float32)
    values[rng.uniform(size=values.shape) < 0.3] = 0  # exact zeros count for APoZ
    values[:, 0] = np.abs(values[:, 0])  # a unit with no negative value
    _check([values], rng.normal(0, 1, units).astype(np.float32))


def test_probes_side_by_side_with_spatial_positions() -> None:
    rng = np.random.default_rng(7)
    conv = np.maximum(rng.normal(0, 1, (5, 6, 6, 24)), 0).astype(np.float32)  # after a ReLU
    dense = rng.normal(3, 0.5, (5, 33)).astype(np.float32)
    shift = np.concatenate([conv.reshape(-1, 24).mean(0), dense.mean(0)]).astype(np.float32)
    _check([conv, dense], shift)


def test_a_large_offset_keeps_the_sums_of_squares_precise() -> None:
    rng = np.random.default_rng(8)
    values = (1000 + rng.normal(0, 0.01, (4000, 3))).astype(np.float32)
    shift = values[:100].mean(0)
    _, moments, _, _ = fold_kernel.fold_arrays([values], shift)
    rows = values.astype(np.float64)
    variance = moments[1] / len(rows) - np.square(moments[0] / len(rows))
    np.testing.assert_allclose(variance, rows.var(0), rtol=1e-3)


def test_a_nan_makes_only_its_units_extremes_nan() -> None:
    values = np.arange(60, dtype=np.float32).reshape(3, 20)
    values[1, 17] = np.nan
    _, _, minimum, maximum = fold_kernel.fold_arrays([values], np.zeros(20, np.float32))
    assert np.isnan(minimum[17]) and np.isnan(maximum[17])
    others = np.arange(20) != 17
    np.testing.assert_array_equal(minimum[others], values[0, others])
    np.testing.assert_array_equal(maximum[others], values[2, others])


@pytest.mark.parametrize("threads", [2, 3, 8])
def test_units_shared_among_threads_match_numpy(threads: int) -> None:
    rng = np.random.default_rng(threads)
    # 64K values per thread at least: these probes (309,000 values) give at most 4 threads work
    probes = [
        np.maximum(rng.normal(0, 1, (40, 10, 10, 40)), 0).astype(np.float32),
        rng.normal(0, 1, (40, 5, 5, 17)).astype(np.float32),
        rng.normal(0, 1, (4000, 33)).astype(np.float32),
    ]
    _check(probes, rng.normal(0, 0.1, 40 + 17 + 33).astype(np.float32), threads)


def test_buffers_that_do_not_match_the_units_are_refused() -> None:
    kernel = fold_kernel._KERNEL
    assert kernel is not None
    shift = np.zeros(4, np.float32)
    outputs = [np.empty(4, t) for t in (np.int32, np.int32, np.float32, np.float32, np.float64, np.float64)]
    with pytest.raises(ValueError, match="whole rows"):
        kernel.fold([np.zeros(10, np.float32)], [4], shift, *outputs, 1)
    with pytest.raises(ValueError, match="add up"):
        kernel.fold([np.zeros(9, np.float32)], [3], shift, *outputs, 1)
    with pytest.raises(ValueError, match="one width per probe"):
        kernel.fold([np.zeros(8, np.float32)], [4, 4], shift, *outputs, 1)
    with pytest.raises(ValueError, match="contiguous"):
        kernel.fold([np.zeros((4, 8), np.float32)[:, ::2]], [4], shift, *outputs, 1)
    outputs[4] = np.empty(4, np.float32)  # sums must be float64
    with pytest.raises(ValueError, match="one item per unit"):
        kernel.fold([np.zeros(8, np.float32)], [4], shift, *outputs, 1)
    with pytest.raises(ValueError, match="add up"):
        fold_kernel.fold_arrays([np.zeros((2, 4), np.float32)], np.zeros(5, np.float32))


def test_the_pass_uses_the_kernel_on_a_cpu_and_agrees_with_xla() -> None:
    keras.utils.set_random_seed(5)
    spec = preset("lenet-5")
    model = build_model(spec)
    x = np.random.default_rng(5).uniform(0, 1, (70, *spec.input_shape)).astype("float32")
    layers = ["conv1", "conv2", "ip1"]
    by_kernel = measure(model, spec, layers, x, batch_size=32)
    assert {p.folding for p in stats_module._PASSES[model].values()} == {"kernel"}
    with fold_kernel.switched_off():
        by_xla = measure(model, spec, layers, x, batch_size=32)
    assert {p.folding for p in stats_module._PASSES[model].values()} == {"kernel", "xla"}
    # switched on again: the kernel's pass, kept, runs again (no new trace)
    before = stats_module.traces()
    again = measure(model, spec, layers, x, batch_size=32)
    assert stats_module.traces() == before
    np.testing.assert_array_equal(again["conv1"].active, by_kernel["conv1"].active)
    for name in layers:
        for field in ("outputs", "active", "zeros", "minimum", "maximum", "histogram", "bin_edges"):
            np.testing.assert_array_equal(getattr(by_kernel[name], field), getattr(by_xla[name], field))
        np.testing.assert_allclose(by_kernel[name].mean, by_xla[name].mean, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(by_kernel[name].variance, by_xla[name].variance, rtol=1e-4, atol=1e-9)
