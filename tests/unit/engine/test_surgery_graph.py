"""Surgery on graphs: a group's constant channels leave every producer, member and consumer at once,
and the model's outputs stay within 1e-5."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest
from graph_cases import constant_plans, plant, randomise
from graph_specs import RESIDUAL
from graph_specs import conv as _conv
from graph_specs import model_spec as _spec
from graph_specs import relu as _relu

from prunespec.layers import ModelSpec
from worker.engine.build import build_model, layer_weights
from worker.engine.surgery import LayerPlan, prune

CONCAT: list[dict[str, Any]] = [
    _conv("a", 3),
    _conv("b", 2, inputs=["input"]),
    {"type": "concatenate", "name": "cat", "inputs": ["a", "b"]},
    {"type": "batch_norm", "name": "cat_bn"},
    _relu("cat_relu"),
    _conv("mix", 4),
    {"type": "global_avg_pool", "name": "mix_pool"},
    {"type": "flatten", "name": "flat", "inputs": ["cat_relu"]},
    {"type": "dense", "name": "head", "units": 3},
    {"type": "concatenate", "name": "both", "inputs": ["head", "mix_pool"]},
    {"type": "dense", "name": "out", "units": 2},
]
DEPTHWISE_SE: list[dict[str, Any]] = [
    _conv("expand", 4),
    _relu("expand_relu"),
    {"type": "depthwise_conv2d", "name": "dw", "kernel_size": 3},
    {"type": "batch_norm", "name": "dw_bn"},
    _relu("dw_relu"),
    {"type": "global_avg_pool", "name": "squeeze", "keepdims": True},
    _conv("reduce", 3, activation="relu"),
    _conv("excite", 4, activation="sigmoid"),
    {"type": "multiply", "name": "scale", "inputs": ["dw_relu", "excite"]},
    _conv("project", 3),
    {"type": "global_max_pool", "name": "pool"},
    {"type": "dense", "name": "out", "units": 2},
]
SEPARABLE: list[dict[str, Any]] = [
    {"type": "separable_conv2d", "name": "sep", "filters": 4, "kernel_size": 3, "activation": "relu"},
    {"type": "upsampling2d", "name": "up", "size": 2},
    {"type": "zero_padding2d", "name": "pad", "padding": 1},
    {"type": "max_pool", "name": "mp", "pool_size": 2},
    {"type": "separable_conv2d", "name": "sep2", "filters": 3, "kernel_size": 1, "use_bias": False},
    {"type": "global_avg_pool", "name": "pool"},
    {"type": "dense", "name": "out", "units": 2},
]


def _pruned(
    layers: list[dict[str, Any]], planted: dict[str, tuple[list[int], float]], seed: int
) -> tuple[keras.Model, keras.Model, ModelSpec, dict[str, LayerPlan], np.ndarray]:
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    spec = _spec([6, 6, 2], layers)
    model = build_model(spec)
    randomise(model, rng)
    for group, (channels, value) in planted.items():
        plant(model, spec, group, channels, value)
    x = rng.normal(size=(32, 6, 6, 2)).astype("float32")
    plans = constant_plans(model, spec, x)
    for group, (channels, _) in planted.items():
        assert set(channels) <= set(plans[group].remove), group
    pruned, pruned_spec = prune(model, spec, plans)
    np.testing.assert_allclose(pruned.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    return model, pruned, pruned_spec, plans, x


def test_a_residual_group_loses_its_channels_in_both_producers_and_every_consumer() -> None:
    model, pruned, spec, plans, _ = _pruned(RESIDUAL, {"stem": ([1], 0.5), "c1": ([0], -1.0)}, seed=1)
    assert set(plans) == {"stem", "c1"}
    width = 4 - len(plans["stem"].remove)
    assert spec.widths() == {"stem": width, "c1": 2, "c2": width, "out": 3}
    after = layer_weights(pruned)
    assert after["stem_bn"][0].shape == after["c2_bn"][0].shape == (width,)
    assert after["out"][0].shape == (width, 3) and after["c1"][0].shape == (1, 1, width, 2)
    keep = [u for u in range(4) if u not in plans["stem"].remove]
    np.testing.assert_array_equal(after["c2"][0], layer_weights(model)["c2"][0][:, :, [1, 2], :][..., keep])


def test_a_concatenation_cuts_each_branch_at_its_offset_also_behind_a_flatten() -> None:
    _, pruned, spec, plans, _ = _pruned(
        CONCAT, {"a": ([0], 0.3), "b": ([1], -2.0), "mix": ([2], 0.2), "head": ([1], 0.7)}, seed=2
    )
    assert spec.widths() == {"a": 2, "b": 1, "mix": 3, "head": 2, "out": 2}
    after = layer_weights(pruned)
    assert after["cat_bn"][0].shape == (3,)
    assert after["mix"][0].shape == (1, 1, 3, 3)
    assert after["head"][0].shape == (36 * 3, 2)
    assert after["out"][0].shape == (2 + 3, 2)


def test_a_depthwise_block_with_squeeze_excitation_folds_through_the_gate() -> None:
    _, pruned, spec, _, _ = _pruned(DEPTHWISE_SE, {"expand": ([2], 0.4), "reduce": ([0], -1.0)}, seed=3)
    assert spec.widths() == {"expand": 3, "reduce": 2, "excite": 3, "project": 3, "out": 2}
    after = layer_weights(pruned)
    assert after["dw"][0].shape == (3, 3, 3, 1) and after["dw"][1].shape == (3,)
    assert after["excite"][0].shape == (1, 1, 2, 3)
    assert after["project"][0].shape == (1, 1, 3, 3)


def test_separable_convolutions_shrink_both_kernels_and_gain_a_bias() -> None:
    _, pruned, spec, _, _ = _pruned(SEPARABLE, {"sep": ([1, 3], 0.6)}, seed=4)
    assert spec.widths()["sep"] == 2
    depthwise, pointwise, bias = layer_weights(pruned)["sep2"]
    assert depthwise.shape == (1, 1, 2, 1) and pointwise.shape == (1, 1, 2, 3) and bias.shape == (3,)


def test_a_fixed_group_cannot_be_planned() -> None:
    spec = _spec([6, 6, 2], RESIDUAL)
    with pytest.raises(ValueError, match="not prunable"):
        prune(build_model(spec), spec, {"c2": LayerPlan(remove=[0])})
