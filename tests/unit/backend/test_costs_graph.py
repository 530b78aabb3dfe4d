"""Parameters and FLOPs of the graph layer types: against Keras on random small graphs, and by hand."""

from __future__ import annotations

import random
from typing import Any

import keras
import pytest

from prunespec.costs import ACTIVATION_FLOPS, layer_costs, model_cost
from prunespec.layers import ModelSpec
from worker.engine.build import build_model

ACTIVATIONS = sorted(ACTIVATION_FLOPS)


def _random_graph(seed: int) -> ModelSpec:
    """A small random graph that uses every layer type: branches joined by add, multiply, concatenate."""
    rng = random.Random(seed)
    channels = rng.randint(1, 3)
    layers: list[dict[str, Any]] = []

    def act() -> str:
        return rng.choice(ACTIVATIONS)

    def window(**fields: Any) -> dict[str, Any]:
        return {
            "kernel_size": rng.choice([1, 2, 3]),
            "strides": rng.choice([1, 2]),
            "padding": "same",
            "activation": act(),
            "use_bias": rng.random() < 0.5,
            **fields,
        }

    width = rng.randint(2, 5)
    layers += [
        {
            "type": "zero_padding2d",
            "name": "pad",
            "padding": [[rng.randint(0, 2), 1], [0, rng.randint(0, 2)]],
        },
        {"type": "conv2d", "name": "stem", "filters": width, **window(strides=1)},
        {"type": "depthwise_conv2d", "name": "dw", **window()},
        {"type": "batch_norm", "name": "dw_bn"},
        {"type": "separable_conv2d", "name": "sep", "filters": width, **window(strides=1)},
        {"type": "activation", "name": "sep_act", "activation": act()},
        {"type": "conv2d", "name": "side", "filters": width, **window(strides=1), "inputs": ["dw_bn"]},
        {
            "type": "add",
            "name": "sum",
            "inputs": ["sep_act", "side", "dw_bn"] if rng.random() < 0.5 else ["sep_act", "side"],
        },
        {"type": "global_avg_pool", "name": "squeeze", "keepdims": True},
        {"type": "conv2d", "name": "gate", "filters": width, "kernel_size": 1, "activation": "sigmoid"},
        {"type": "multiply", "name": "scaled", "inputs": ["sum", "gate"]},
        {"type": "upsampling2d", "name": "up", "size": rng.choice([1, 2])},
        {"type": "conv2d_transpose", "name": "deconv", "filters": rng.randint(1, 3), **window()},
        {"type": "max_pool", "name": "pool", "pool_size": 2, "padding": "same"},
        {"type": "separable_conv2d", "name": "sep2", "filters": 2, **window(), "inputs": ["scaled"]},
        {"type": "global_max_pool", "name": "gmax", "keepdims": True, "inputs": ["sep2"]},
        {"type": "global_max_pool", "name": "gmax_pool", "keepdims": True, "inputs": ["pool"]},
        {"type": "concatenate", "name": "cat", "inputs": ["gmax", "gmax_pool"]},
        {"type": "reshape", "name": "flat", "target_shape": [-1]},
        {"type": "dropout", "name": "drop", "rate": 0.1},
        {"type": "dense", "name": "out", "units": rng.randint(1, 4), "activation": act()},
    ]
    return ModelSpec.model_validate(
        {"input_shape": [rng.randint(5, 9), rng.randint(5, 9), channels], "layers": layers}
    )


@pytest.mark.parametrize("seed", range(4))
def test_params_equal_keras_count_params_on_random_graphs(seed: int) -> None:
    spec = _random_graph(seed)
    model = build_model(spec)
    costs = {cost.name: cost.params for cost in layer_costs(spec)}
    for layer in model.layers:
        if not isinstance(layer, keras.layers.InputLayer):
            assert costs[layer.name] == layer.count_params(), layer.name
    assert model_cost(spec).params == model.count_params()
    assert tuple(model.output.shape[1:]) == spec.output_shape


def _costs(input_shape: list[int], *layers: dict[str, Any]) -> dict[str, tuple[int, int]]:
    spec = ModelSpec.model_validate({"input_shape": input_shape, "layers": list(layers)})
    return {cost.name: (cost.params, cost.flops) for cost in layer_costs(spec)}


def test_depthwise_and_separable_costs_by_hand() -> None:
    costs = _costs(
        [6, 6, 3],
        {"type": "depthwise_conv2d", "name": "dw", "kernel_size": 3, "activation": "relu6"},
        {"type": "separable_conv2d", "name": "sep", "filters": 5, "kernel_size": 2, "use_bias": False},
        {"type": "flatten"},
        {"type": "dense", "units": 1},
    )
    # depthwise: 4x4 outputs, 3 channels, 3x3 kernel; bias and relu6 one FLOP each per output element
    assert costs["dw"] == (9 * 3 + 3, 2 * 16 * 9 * 3 + 48 + 48)
    # separable: 3x3 outputs; depthwise 2x2x3 then pointwise 3x5
    assert costs["sep"] == (2 * 2 * 3 + 3 * 5, 2 * 9 * (2 * 2 * 3 + 3 * 5))


def test_merge_pool_and_reshaping_costs_by_hand() -> None:
    costs = _costs(
        [4, 4, 2],
        {"type": "conv2d", "name": "a", "filters": 2, "kernel_size": 1},
        {"type": "add", "name": "sum", "inputs": ["input", "a", "a"]},
        {"type": "global_avg_pool", "name": "gap", "keepdims": True},
        {"type": "multiply", "name": "scale", "inputs": ["sum", "gap"]},
        {"type": "concatenate", "name": "cat", "inputs": ["scale", "a"]},
        {"type": "zero_padding2d", "name": "pad", "padding": 1},
        {"type": "upsampling2d", "name": "up"},
        {"type": "global_max_pool", "name": "gmp"},
        {"type": "reshape", "name": "rs", "target_shape": [2, 2]},
        {"type": "flatten", "name": "fl"},
        {"type": "dense", "name": "out", "units": 1, "activation": "softmax"},
    )
    assert costs["sum"] == (0, 2 * 32)
    assert costs["gap"] == (0, 32)
    assert costs["scale"] == (0, 32)
    assert costs["cat"] == costs["pad"] == costs["up"] == costs["rs"] == (0, 0)
    assert costs["gmp"] == (0, 12 * 12 * 4)
    assert costs["out"] == (5, 2 * 4 + 1 + 3)


@pytest.mark.parametrize(("activation", "flops"), sorted(ACTIVATION_FLOPS.items()))
def test_every_activation_has_a_per_element_cost(activation: str, flops: int) -> None:
    costs = _costs(
        [3], {"type": "activation", "name": "f", "activation": activation}, {"type": "dense", "units": 1}
    )
    assert costs["f"] == (0, 3 * flops)
