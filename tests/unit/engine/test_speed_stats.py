"""The statistics pass traces once per model and shape, and runs on whichever device it is placed on."""

from __future__ import annotations

import gc

import keras
import numpy as np
import pytest
import tensorflow as tf

from prunespec.layers import ModelSpec
from prunespec.presets import preset
from worker.engine import fold_kernel
from worker.engine import stats as stats_module
from worker.engine.build import build_model
from worker.engine.results import LayerStats
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
    # numbers of examples the step (128) divides: a pass without a partial last step, traced once
    measure(model, spec, ["hidden"], x[:256], batch_size=128)
    measure(model, spec, ["hidden"], x[:128], batch_size=128)
    assert stats_module.traces() - before == 2
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


_REDUCTIONS = stats_module._reductions
_LAYERS = ["conv1", "ip1"]


def _lenet_measured(seed: int) -> tuple[ModelSpec, keras.Model, np.ndarray, dict[str, LayerStats]]:
    """LeNet-5, 50 examples, and their statistics in steps of 16 (the last step holds 2)."""
    spec = preset("lenet-5")
    keras.utils.set_random_seed(seed)
    model = build_model(spec)
    x = np.random.default_rng(seed).uniform(0, 1, (50, *spec.input_shape)).astype("float32")
    return spec, model, x, measure(model, spec, _LAYERS, x, batch_size=16)


def _copy(model: keras.Model, spec: ModelSpec) -> keras.Model:
    """A new model (a pass of its own) with ``model``'s weights."""
    fresh = build_model(spec)
    fresh.set_weights(model.get_weights())
    return fresh


def _reductions_xla_cannot_compile(grid: tf.Tensor, shift: tf.Tensor, slabs: int) -> stats_module.Reductions:
    # a NumPy call inside: XLA refuses to compile it, plain TensorFlow runs it
    passed = tf.numpy_function(lambda values: values, [grid], tf.float32, stateful=False)
    return _REDUCTIONS(tf.ensure_shape(passed, grid.shape), shift, slabs)


def test_a_pass_xla_cannot_compile_falls_back_to_plain_tensorflow(monkeypatch: pytest.MonkeyPatch) -> None:
    spec, model, x, expected = _lenet_measured(3)
    monkeypatch.setattr(fold_kernel, "available", lambda: False)  # XLA's pass, as without the C kernel
    monkeypatch.setattr(stats_module, "_reductions", _reductions_xla_cannot_compile)
    # the shared compiled step has traced these shapes already: a new one traces the patched reductions
    monkeypatch.setattr(
        stats_module,
        "_xla_fold_step",
        tf.function(stats_module._fold_step, jit_compile=True, autograph=False),
    )
    fresh = _copy(model, spec)
    before = stats_module.traces()
    fallen_back = measure(fresh, spec, _LAYERS, x, batch_size=16)
    again = measure(fresh, spec, _LAYERS, x, batch_size=16)
    assert stats_module.traces() - before == 2  # the XLA pass, then the plain one, kept
    assert next(iter(stats_module._PASSES[fresh].values())).folding == "plain"
    for name in _LAYERS:
        np.testing.assert_array_equal(fallen_back[name].zeros, expected[name].zeros)
        np.testing.assert_array_equal(fallen_back[name].maximum, expected[name].maximum)
        np.testing.assert_allclose(fallen_back[name].mean, expected[name].mean, rtol=1e-5, atol=1e-7)
        np.testing.assert_array_equal(again[name].minimum, fallen_back[name].minimum)


def test_only_full_steps_reach_the_compiled_reductions(monkeypatch: pytest.MonkeyPatch) -> None:
    # XLA compiles every step shape it sees, anew for every pruned model: a last step that does not
    # fill one is folded in plain TensorFlow instead of costing a second compilation per cycle
    spec, model, x, expected = _lenet_measured(4)
    monkeypatch.setattr(fold_kernel, "available", lambda: False)  # XLA's pass, as without the C kernel
    sizes: list[int] = []

    def recording_fold_step(
        values: list[tf.Tensor], shift: tf.Tensor, step: int
    ) -> stats_module.StepReductions:
        def record(examples: np.ndarray) -> np.ndarray:
            sizes.append(int(examples))
            return examples

        seen = tf.numpy_function(record, [tf.shape(values[0])[0]], tf.int32, stateful=True)
        with tf.control_dependencies([seen]):
            shift = tf.identity(shift)
        return stats_module._fold_step(values, shift, step)

    monkeypatch.setattr(stats_module, "_xla_fold_step", tf.function(recording_fold_step, autograph=False))
    measured = measure(_copy(model, spec), spec, _LAYERS, x, batch_size=16)
    assert sizes == [16, 16, 16]  # the fourth step's 2 examples were folded without it
    for name in _LAYERS:
        np.testing.assert_array_equal(measured[name].zeros, expected[name].zeros)
        np.testing.assert_array_equal(measured[name].active, expected[name].active)
        np.testing.assert_array_equal(measured[name].minimum, expected[name].minimum)
        np.testing.assert_allclose(measured[name].mean, expected[name].mean, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(measured[name].variance, expected[name].variance, rtol=1e-4, atol=1e-7)
