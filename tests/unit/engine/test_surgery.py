"""Surgery invariants: outputs kept where removal is exact, surviving weights copied bit for bit."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from prunespec.layers import ModelSpec
from worker.engine.build import build_model, layer_weights
from worker.engine.stats import measure
from worker.engine.surgery import LayerPlan, prune


def _spec(input_shape: list[int], layers: list[dict]) -> ModelSpec:
    return ModelSpec.model_validate({"input_shape": input_shape, "layers": layers})


def _plans_from_stats(
    model: keras.Model, spec: ModelSpec, x: np.ndarray, extra: dict[str, list[int]] | None = None
):
    """Plan: remove every constant unit (folding its value) plus the ``extra`` units."""
    stats = measure(model, spec, spec.prunable_names(), x, batch_size=64)
    plans = {}
    for name, layer in stats.items():
        constant = np.flatnonzero(layer.maximum - layer.minimum <= 1e-7)
        remove = sorted(set(constant.tolist()) | set((extra or {}).get(name, [])))
        plans[name] = LayerPlan(remove=remove, constants={int(u): float(layer.mean[u]) for u in constant})
    return plans


def _kill_dense_units(model: keras.Model, name: str, units: list[int], value: float = 0.0) -> None:
    """Zero the units' incoming weights; bias ``value`` (≤ 0 gives a dead ReLU)."""
    kernel, bias = model.get_layer(name).get_weights()
    kernel[:, units] = 0.0
    bias[units] = value
    model.get_layer(name).set_weights([kernel, bias])


def _kill_channels(model: keras.Model, conv: str, bn: str, channels: list[int], beta: float) -> None:
    """Zero the channels' kernels and bias and set the BatchNorm shift: constant relu(beta') output."""
    weights = model.get_layer(conv).get_weights()
    weights[0][..., channels] = 0.0
    if len(weights) > 1:
        weights[1][channels] = 0.0
    model.get_layer(conv).set_weights(weights)
    gamma, shift, mean, variance = model.get_layer(bn).get_weights()
    mean[channels] = 0.0
    shift[channels] = beta
    model.get_layer(bn).set_weights([gamma, shift, mean, variance])


def _randomise_batch_norms(model: keras.Model, rng: np.random.Generator) -> None:
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma.shape).astype("float32"),
                    rng.normal(0, 0.1, beta.shape).astype("float32"),
                    rng.normal(0, 0.1, mean.shape).astype("float32"),
                    rng.uniform(0.5, 1.5, variance.shape).astype("float32"),
                ]
            )


def test_dense_dead_and_constant_units_leave_outputs_unchanged() -> None:
    keras.utils.set_random_seed(1)
    spec = _spec(
        [4],
        [
            {"type": "dense", "name": "a", "units": 8, "activation": "relu"},
            {"type": "dense", "name": "b", "units": 6, "activation": "relu"},
            {"type": "dense", "name": "out", "units": 3},
        ],
    )
    model = build_model(spec)
    _kill_dense_units(model, "a", [1, 4], value=-1.0)  # dead ReLUs
    _kill_dense_units(model, "a", [2], value=0.7)  # constant 0.7
    _kill_dense_units(model, "b", [0], value=-0.2)
    x = np.random.default_rng(0).normal(size=(256, 4)).astype("float32")
    plans = _plans_from_stats(model, spec, x)
    assert plans["a"].remove == [1, 2, 4] and plans["b"].remove == [0]

    pruned, pruned_spec = prune(model, spec, plans)

    assert pruned_spec.widths() == {"a": 5, "b": 5, "out": 3}
    np.testing.assert_allclose(pruned.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)


def test_surviving_weights_are_copied_exactly() -> None:
    keras.utils.set_random_seed(2)
    spec = _spec(
        [5],
        [
            {"type": "dense", "name": "a", "units": 7, "activation": "relu"},
            {"type": "dense", "name": "out", "units": 2},
        ],
    )
    model = build_model(spec)
    before = layer_weights(model)
    pruned, _ = prune(model, spec, {"a": LayerPlan(remove=[0, 3, 6])})
    after = layer_weights(pruned)
    keep = [1, 2, 4, 5]
    np.testing.assert_array_equal(after["a"][0], before["a"][0][:, keep])
    np.testing.assert_array_equal(after["a"][1], before["a"][1][keep])
    np.testing.assert_array_equal(after["out"][0], before["out"][0][keep, :])
    np.testing.assert_array_equal(after["out"][1], before["out"][1])
    # the original model is untouched
    np.testing.assert_array_equal(layer_weights(model)["a"][0], before["a"][0])


def test_conv_batchnorm_through_pool_and_flatten() -> None:
    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(3)
    spec = _spec(
        [8, 8, 2],
        [
            {"type": "conv2d", "name": "conv", "filters": 6, "kernel_size": 3},
            {"type": "batch_norm", "name": "bn"},
            {"type": "activation", "name": "relu", "activation": "relu"},
            {"type": "max_pool", "name": "pool", "pool_size": 2},
            {"type": "flatten", "name": "flat"},
            {"type": "dense", "name": "fc", "units": 4, "activation": "relu"},
            {"type": "dense", "name": "out", "units": 2},
        ],
    )
    model = build_model(spec)
    _randomise_batch_norms(model, rng)
    _kill_channels(model, "conv", "bn", [0], beta=-3.0)  # dead after relu
    _kill_channels(model, "conv", "bn", [3], beta=0.8)  # constant 0.8 everywhere
    x = rng.normal(size=(64, 8, 8, 2)).astype("float32")
    plans = _plans_from_stats(model, spec, x, extra={"conv": [5]})
    assert list(plans["conv"].remove) == [0, 3, 5]

    pruned, pruned_spec = prune(model, spec, plans)

    assert pruned_spec.widths()["conv"] == 3
    assert pruned.get_layer("fc").get_weights()[0].shape == (3 * 3 * 3, 4)
    before, after = layer_weights(model), layer_weights(pruned)
    for param in range(4):
        np.testing.assert_array_equal(after["bn"][param], before["bn"][param][[1, 2, 4]])
    # channel 5 carried information, so only compare a model where it was silent in the first place
    silent = build_model(spec)
    silent.set_weights(model.get_weights())
    _kill_channels(silent, "conv", "bn", [5], beta=-3.0)
    pruned_silent, _ = prune(silent, spec, _plans_from_stats(silent, spec, x))
    np.testing.assert_allclose(pruned_silent.predict(x, verbose=0), silent.predict(x, verbose=0), atol=1e-5)


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_conv_transpose_autoencoder_dead_channels(padding: str) -> None:
    keras.utils.set_random_seed(4)
    rng = np.random.default_rng(4)
    conv = {"kernel_size": 3, "strides": 2, "padding": padding}
    spec = _spec(
        [9, 9, 1],
        [
            {"type": "conv2d", "name": "enc", "filters": 6, **conv},
            {"type": "batch_norm", "name": "enc_bn"},
            {"type": "activation", "name": "enc_relu", "activation": "relu"},
            {"type": "conv2d_transpose", "name": "dec1", "filters": 5, **conv},
            {"type": "batch_norm", "name": "dec1_bn"},
            {"type": "activation", "name": "dec1_relu", "activation": "relu"},
            {"type": "conv2d_transpose", "name": "dec2", "filters": 1, "kernel_size": 3, "padding": "same"},
            {"type": "batch_norm", "name": "dec2_bn"},
            {"type": "activation", "name": "dec2_tanh", "activation": "tanh"},
        ],
    )
    model = build_model(spec)
    _randomise_batch_norms(model, rng)
    _kill_channels(model, "enc", "enc_bn", [1, 4], beta=-2.0)
    _kill_channels(model, "dec1", "dec1_bn", [0, 2], beta=-2.0)
    x = rng.uniform(0, 1, size=(32, 9, 9, 1)).astype("float32")
    plans = _plans_from_stats(model, spec, x)
    assert list(plans["enc"].remove) == [1, 4] and list(plans["dec1"].remove) == [0, 2]

    pruned, pruned_spec = prune(model, spec, plans)

    assert pruned_spec.widths() == {"enc": 4, "dec1": 3, "dec2": 1}
    assert pruned.get_layer("dec1").get_weights()[0].shape == (3, 3, 3, 4)  # (kh, kw, out, in)
    assert pruned.get_layer("dec2").get_weights()[0].shape == (3, 3, 1, 3)
    np.testing.assert_allclose(pruned.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)


def test_constant_unit_into_layer_without_bias_adds_a_bias() -> None:
    keras.utils.set_random_seed(5)
    spec = _spec(
        [3],
        [
            {"type": "dense", "name": "a", "units": 4, "activation": "relu"},
            {"type": "dense", "name": "out", "units": 2, "use_bias": False},
        ],
    )
    model = build_model(spec)
    _kill_dense_units(model, "a", [2], value=1.5)
    x = np.random.default_rng(5).normal(size=(64, 3)).astype("float32")
    pruned, pruned_spec = prune(model, spec, _plans_from_stats(model, spec, x))
    assert pruned_spec.layers[1].use_bias is True  # type: ignore[union-attr]
    np.testing.assert_allclose(pruned.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)


def test_merging_always_active_units_is_exact_on_measured_inputs() -> None:
    keras.utils.set_random_seed(6)
    rng = np.random.default_rng(6)
    spec = _spec(
        [2],
        [
            {"type": "dense", "name": "hidden", "units": 40, "activation": "relu"},
            {"type": "dense", "name": "out", "units": 1},
        ],
    )
    model = build_model(spec)
    kernel, bias = model.get_layer("hidden").get_weights()
    kernel[:, :30] = np.abs(kernel[:, :30])
    bias[:30] = 0.1  # with x >= 0 these 30 units are always active
    model.get_layer("hidden").set_weights([kernel, bias])
    x = rng.uniform(0, 1, size=(500, 2)).astype("float32")
    stats = measure(model, spec, ["hidden"], x)["hidden"]
    active = np.flatnonzero(stats.minimum > 0)
    assert len(active) >= 30
    hidden_input = {"hidden": x}

    pruned, pruned_spec = prune(
        model, spec, {"hidden": LayerPlan(merge=active.tolist())}, layer_inputs=hidden_input
    )

    # 2 inputs and 1 output: the merged linear part has rank 1
    assert pruned_spec.widths()["hidden"] == 40 - len(active) + 1
    np.testing.assert_allclose(pruned.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-4)


def test_plans_are_checked() -> None:
    spec = _spec(
        [3], [{"type": "dense", "name": "a", "units": 2, "activation": "relu"}, {"type": "dense", "units": 1}]
    )
    model = build_model(spec)
    with pytest.raises(ValueError, match="cannot remove every unit"):
        prune(model, spec, {"a": LayerPlan(remove=[0, 1])})
    with pytest.raises(ValueError, match="has 2 units"):
        prune(model, spec, {"a": LayerPlan(remove=[5])})
    with pytest.raises(ValueError, match="not prunable"):
        prune(model, spec, {"dense_1": LayerPlan(remove=[0])})


def test_a_sequential_models_groups_are_its_prunable_layers_with_probe_and_next_layer() -> None:
    from prunespec.groups import prunable_groups
    from prunespec.presets import preset

    groups = {g.name: g for g in prunable_groups(preset("mnist-autoencoder"))}
    assert list(groups) == ["enc1", "enc2", "dec1"]
    assert groups["enc1"].probes == ("enc1_relu",)  # after the batch norm and the ReLU
    assert [c.layer for c in groups["enc1"].consumers] == ["enc2"]
    lenet = {g.name: g for g in prunable_groups(preset("lenet-5"))}
    assert lenet["conv2"].probes == ("conv2",)
    assert [(c.layer, c.flatten) for c in lenet["conv2"].consumers] == [("ip1", "flatten")]


def _one_unit_sum_model(bias: float) -> tuple[keras.Model, ModelSpec]:
    """2 → 1 ReLU → 1 with y = relu(x1 + x2 + bias) − bias: the sum where the unit is active."""
    spec = _spec(
        [2],
        [
            {"type": "dense", "name": "hidden", "units": 1, "activation": "relu"},
            {"type": "dense", "name": "out", "units": 1},
        ],
    )
    model = build_model(spec)
    model.get_layer("hidden").set_weights([np.ones((2, 1), "float32"), np.array([bias], "float32")])
    model.get_layer("out").set_weights([np.ones((1, 1), "float32"), np.array([-bias], "float32")])
    return model, spec


def test_merging_a_nearly_active_unit_makes_it_linear_on_every_measured_input() -> None:
    # the unit's kink cuts the corner x1 + x2 < 0.05 off the data: there it outputs a constant
    model, spec = _one_unit_sum_model(-0.05)
    x = np.random.default_rng(7).uniform(0, 1, size=(2000, 2)).astype("float32")
    x[0] = 0.0  # the corner itself is measured
    total = x.sum(axis=1, keepdims=True)
    inactive = total[:, 0] < 0.05
    assert inactive.any()

    pruned, pruned_spec = prune(model, spec, {"hidden": LayerPlan(merge=[0])}, layer_inputs={"hidden": x})

    assert pruned_spec.widths()["hidden"] == 1
    np.testing.assert_allclose(pruned.predict(x, verbose=0), total, atol=1e-5)  # the sum everywhere
    before = model.predict(x, verbose=0)
    np.testing.assert_allclose(before[~inactive], total[~inactive], atol=1e-5)
    assert np.abs(before[inactive] - total[inactive]).max() > 1e-3


def test_merged_units_keep_a_margin_above_zero() -> None:
    # the merged unit's bias is a flat direction of the loss: a 1% margin let retraining drift it
    # back into the data, so the smallest measured pre-activation sits 10% of the spread above 0
    model, spec = _one_unit_sum_model(-0.05)
    x = np.random.default_rng(8).uniform(0, 1, size=(2000, 2)).astype("float32")
    pruned, _ = prune(model, spec, {"hidden": LayerPlan(merge=[0])}, layer_inputs={"hidden": x})
    kernel, bias = pruned.get_layer("hidden").get_weights()
    pre = x @ kernel + bias
    spread = float(pre.max() - pre.min())
    assert pre.min() >= 0.1 * spread


def test_merging_a_single_unit_that_is_already_linear_changes_nothing() -> None:
    model, spec = _one_unit_sum_model(0.5)
    x = np.random.default_rng(9).uniform(0, 1, size=(500, 2)).astype("float32")
    pruned, _ = prune(model, spec, {"hidden": LayerPlan(merge=[0])}, layer_inputs={"hidden": x})
    for before, after in zip(layer_weights(model).values(), layer_weights(pruned).values(), strict=True):
        for a, b in zip(before, after, strict=True):
            np.testing.assert_array_equal(a, b)
