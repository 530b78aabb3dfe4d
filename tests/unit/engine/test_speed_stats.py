"""The statistics pass traces once per model and shape, and runs on whichever device it is placed on."""

from __future__ import annotations

import gc

import keras
import numpy as np
import tensorflow as tf

from prunespec.presets import preset
from worker.engine import stats as stats_module
from worker.engine.build import build_model
from worker.engine.stats import measure
from worker.engine.surgery import LayerPlan, prune


def test_measuring_one_model_again_does_not_trace_again() -> None:
    spec = preset("sum-mlp")
    model = build_model(spec)
    x = np.random.default_rng(0).uniform(0, 1, (300, 2)).astype("float32")
    before = stats_module.traces()
    first = measure(model, spec, ["hidden"], x, batch_size=128)["hidden"]
    # a second cycle on the same model, then a different number of examples: no new trace
    second = measure(model, spec, ["hidden"], x, batch_size=128)["hidden"]
    measure(model, spec, ["hidden"], x[:257], batch_size=128)
    assert stats_module.traces() - before == 1
    np.testing.assert_array_equal(first.active, second.active)
    np.testing.assert_array_equal(first.histogram, second.histogram)
    np.testing.assert_array_equal(first.mean, second.mean)


def test_a_new_model_traces_once_and_a_dropped_model_releases_its_pass() -> None:
    spec = preset("sum-mlp")
    x = np.random.default_rng(1).uniform(0, 1, (200, 2)).astype("float32")
    before = stats_module.traces()
    for _ in range(2):
        model = build_model(spec)
        measure(model, spec, ["hidden"], x)
        measure(model, spec, ["hidden"], x)
    assert stats_module.traces() - before == 2
    del model
    gc.collect()
    assert len(stats_module._PASSES) <= 1  # the first model's pass went with it


def test_statistics_and_surgery_run_when_placed_on_the_cpu_explicitly() -> None:
    keras.utils.set_random_seed(0)
    spec = preset("lenet-5")
    x = np.random.default_rng(2).uniform(0, 1, (40, *spec.input_shape)).astype("float32")
    with tf.device("/CPU:0"):
        model = build_model(spec)
        placed = measure(model, spec, ["conv1", "ip1"], x, batch_size=16)
        smaller, smaller_spec = prune(model, spec, {"ip1": LayerPlan(remove=[0, 1, 2])})
        outputs = smaller.predict(x, verbose=0)
    default = measure(model, spec, ["conv1", "ip1"], x, batch_size=16)
    for name in ("conv1", "ip1"):
        np.testing.assert_array_equal(placed[name].zeros, default[name].zeros)
        np.testing.assert_allclose(placed[name].mean, default[name].mean, rtol=1e-6)
    assert smaller_spec.widths()["ip1"] == spec.widths()["ip1"] - 3
    assert outputs.shape == (40, 10)
