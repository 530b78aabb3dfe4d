"""The compiled statistics pass against a NumPy reference computed from plain predictions."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from prunespec.layers import ModelSpec
from prunespec.presets import preset
from worker.engine import histogram_sample
from worker.engine import stats as stats_module
from worker.engine.build import build_model
from worker.engine.stats import measure, probe_model


def _reference(model: keras.Model, spec: ModelSpec, layers: list[str], x: np.ndarray) -> list[np.ndarray]:
    outputs = probe_model(model, spec, layers).predict(x, verbose=0)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    return [o.reshape(-1, o.shape[-1]).astype(np.float64) for o in outputs]


def _sampled(values: np.ndarray, examples: int, step: int, rows: int) -> np.ndarray:
    """The rows the pass's histograms count, from a probe's values (rows, example-major): every
    ⌈steps / SAMPLE_STEPS⌉-th step gives ``rows`` rows spread evenly over it (all where it has fewer)."""
    positions = len(values) // examples
    steps = -(-examples // step)
    every = -(-steps // histogram_sample.SAMPLE_STEPS)
    picked = []
    for index in range(0, steps, every):
        block = values[index * step * positions : min(examples, (index + 1) * step) * positions]
        picked.append(block[:: max(1, len(block) // rows)][:rows])
    return np.concatenate(picked)


def _binned(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Per unit, counts of ``values`` (rows × units) over ``edges``; the highest in the last bin."""
    clipped = np.clip(values, edges[0], edges[-1] - 1e-9 * (edges[-1] - edges[0]))
    return np.stack([np.histogram(clipped[:, u], bins=edges)[0] for u in range(values.shape[1])])


@pytest.mark.parametrize("name", ["sum-mlp", "lenet-5", "mnist-autoencoder"])
def test_statistics_match_numpy(name: str, folding: str) -> None:
    keras.utils.set_random_seed(0)
    spec = preset(name)
    model = build_model(spec)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (300, *spec.input_shape)).astype("float32")
    layers = spec.prunable_names()

    # batch 128 does not divide 300: the last, short batch must be merged correctly too
    stats = measure(model, spec, layers, x, batch_size=128, bins=16)
    probe = probe_model(model, spec, layers)
    step = stats_module.step_examples(probe, 128)
    widths = [int(o.shape[-1]) for o in probe.outputs]
    per_step = -(
        -histogram_sample.sample_rows(widths, histogram_sample.HISTOGRAM_ROWS)
        // histogram_sample.SAMPLE_STEPS
    )

    for layer, values in zip(layers, _reference(model, spec, layers, x), strict=True):
        s = stats[layer]
        assert s.outputs == values.shape[0]
        np.testing.assert_array_equal(s.active, (values > 0).sum(axis=0))
        np.testing.assert_array_equal(s.zeros, (values == 0).sum(axis=0))
        np.testing.assert_allclose(s.apoz, (values == 0).mean(axis=0))
        np.testing.assert_allclose(s.mean, values.mean(axis=0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(s.variance, values.var(axis=0), rtol=1e-4, atol=1e-7)
        # the pass's forward pass may round differently from predict's (another batch, another conv
        # kernel): extremes agree to float32 rounding of the activations, as the mean does
        np.testing.assert_allclose(s.minimum, values.min(axis=0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(s.maximum, values.max(axis=0), rtol=1e-5, atol=1e-6)
        # the edges run from the layer's lowest value to its highest, over the whole pass
        np.testing.assert_allclose(s.bin_edges[[0, -1]], [values.min(), values.max()], rtol=1e-5, atol=1e-6)
        positions = len(values) // len(x)
        sample = _sampled(values, len(x), step, max(1, min(step * positions, per_step)))
        # float32 binning may move a value sitting exactly on an edge by one bin
        assert np.abs(s.histogram - _binned(sample, s.bin_edges)).sum() <= 0.001 * sample.size + 2
        np.testing.assert_array_equal(s.histogram.sum(axis=1), len(sample))


def test_histograms_sample_rows_spread_over_the_pass_but_moments_cover_everything() -> None:
    spec = preset("sum-mlp")
    model = build_model(spec)
    x = np.random.default_rng(1).uniform(0, 1, (10_003, 2)).astype("float32")
    # 101 steps of 100 (the last of 3): every 2nd step gives 10 rows, one in ten of its rows
    rows = 10 * histogram_sample.SAMPLE_STEPS
    stats = measure(model, spec, ["hidden"], x, batch_size=100, histogram_rows=rows)["hidden"]
    assert stats.outputs == len(x)
    (values,) = _reference(model, spec, ["hidden"], x)
    sample = _sampled(values, len(x), 100, 10)
    assert len(sample) == 50 * 10 + 3  # the last step is sampled: its 3 rows, not 10
    np.testing.assert_array_equal(stats.histogram.sum(axis=1), len(sample))
    assert np.abs(stats.histogram - _binned(sample, stats.bin_edges)).sum() <= 0.001 * sample.size + 2
    # a pass of few steps: every step gives its rows
    few = measure(model, spec, ["hidden"], x[:1000], batch_size=100, histogram_rows=rows)["hidden"]
    np.testing.assert_array_equal(few.histogram.sum(axis=1), 10 * 10)


def test_variance_keeps_precision_with_a_large_offset(folding: str) -> None:
    # a unit whose outputs are 1000 + small noise: naive float32 sum-of-squares would lose the variance
    spec = ModelSpec.model_validate(
        {
            "input_shape": [1],
            "layers": [{"type": "dense", "name": "a", "units": 1}, {"type": "dense", "units": 1}],
        }
    )
    model = build_model(spec)
    model.get_layer("a").set_weights([np.array([[1.0]], "float32"), np.array([1000.0], "float32")])
    x = np.random.default_rng(2).normal(0, 0.01, (20000, 1)).astype("float32")
    stats = measure(model, spec, ["a"], x, batch_size=1000)["a"]
    np.testing.assert_allclose(stats.variance[0], x.astype(np.float64).var(), rtol=0.05)
    np.testing.assert_allclose(stats.mean[0], 1000 + x.astype(np.float64).mean(), rtol=1e-6)


def test_empty_input_is_refused() -> None:
    spec = preset("sum-mlp")
    with pytest.raises(ValueError, match="at least one example"):
        measure(build_model(spec), spec, ["hidden"], np.zeros((0, 2), "float32"))


def test_a_large_probe_is_measured_in_steps_that_fit_in_cache(folding: str) -> None:
    spec = preset("lenet-5")
    model = build_model(spec)
    # conv1's values: 24 × 24 positions × 20 channels × 4 bytes per example
    limit = stats_module.KERNEL_STEP_BYTES if folding == "kernel" else stats_module.STEP_BYTES
    per_step = limit // (24 * 24 * 20 * 4)
    batch = 1024
    assert 1 < per_step < batch
    x = np.random.default_rng(4).uniform(0, 1, (2 * per_step + 5, *spec.input_shape)).astype("float32")
    rows = 10 * histogram_sample.SAMPLE_STEPS
    stats = measure(model, spec, ["conv1"], x, batch_size=batch, histogram_rows=rows)["conv1"]
    assert stats.outputs == len(x) * 24 * 24
    # 3 steps (per_step, per_step, 5 examples) give 10 rows each
    np.testing.assert_array_equal(stats.histogram.sum(axis=1), 3 * 10)
    # a small probe keeps the whole batch per step
    dense = measure(model, spec, ["ip1"], x, batch_size=128, histogram_rows=rows)["ip1"]
    np.testing.assert_array_equal(dense.histogram.sum(axis=1), -(-len(x) // 128) * 10)


def test_a_wide_model_samples_fewer_rows_within_the_sample_budget() -> None:
    assert histogram_sample.sample_rows([500, 524], 10**9) == histogram_sample.SAMPLE_BYTES // (4 * 1024)
    assert histogram_sample.sample_rows([10], 300) == 300
    assert histogram_sample.sample_rows([10**9], 300) == 1
