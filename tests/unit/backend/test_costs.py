"""Parameter and FLOP counts of prunespec.costs against Keras, TensorFlow's profiler and naive loops."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf

from prunespec.costs import LayerCost, ModelCost, layer_cost, layer_costs, model_cost
from prunespec.layers import Conv2DLayer, Conv2DTransposeLayer, DenseLayer, ModelSpec, layer_output_shape
from prunespec.presets import preset, preset_names
from worker.engine.build import build_model

#: Activations TensorFlow's profiler registers no FLOPs for; the costs module counts 1 per element.
UNCOUNTED_ACTIVATIONS = {"Relu": 1, "Relu6": 1, "Tanh": 1, "Sigmoid": 1}

#: Covers what the presets do not: avg pool, same padding with strides, pool strides, dropout,
#: sigmoid and tanh activations, layers without bias, BatchNorm on a vector, transposed convolutions
#: with kernel < stride and odd kernels (padding 'same', or 'valid' with kernel <= stride, where
#: TensorFlow's Conv2DBackpropInput formula is exact).
MIXED_SPEC = ModelSpec.model_validate(
    {
        "input_shape": [13, 11, 3],
        "layers": [
            {
                "type": "conv2d",
                "name": "c1",
                "filters": 4,
                "kernel_size": [3, 2],
                "strides": 2,
                "padding": "same",
                "activation": "tanh",
            },
            {"type": "avg_pool", "name": "p1", "pool_size": 2, "strides": 1, "padding": "same"},
            {
                "type": "conv2d_transpose",
                "name": "t1",
                "filters": 5,
                "kernel_size": 3,
                "strides": 2,
                "padding": "same",
                "use_bias": False,
            },
            {"type": "batch_norm", "name": "bn1"},
            {"type": "activation", "name": "a1", "activation": "sigmoid"},
            {
                "type": "conv2d_transpose",
                "name": "t2",
                "filters": 2,
                "kernel_size": 2,
                "strides": 3,
                "padding": "valid",
                "activation": "relu",
            },
            {"type": "max_pool", "name": "p2", "pool_size": 3, "strides": 2},
            {"type": "conv2d", "name": "c2", "filters": 3, "kernel_size": 2, "use_bias": False},
            {"type": "flatten", "name": "flat"},
            {"type": "dropout", "name": "drop", "rate": 0.5},
            {"type": "dense", "name": "d1", "units": 7, "activation": "sigmoid", "use_bias": False},
            {"type": "batch_norm", "name": "bn2"},
            {"type": "dense", "name": "d2", "units": 1},
        ],
    }
)

SPECS: dict[str, ModelSpec] = {**{name: preset(name) for name in preset_names()}, "mixed": MIXED_SPEC}


# --------------------------------------------------------------------------------------------- parameters


@pytest.mark.parametrize("name", list(SPECS))
def test_params_equal_keras_count_params(name: str) -> None:
    spec = SPECS[name]
    model = build_model(spec)
    costs = model_cost(spec)
    assert costs.params == model.count_params()
    by_name = {cost.name: cost for cost in costs.layers}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        assert by_name[layer.name].params == layer.count_params(), layer.name


def test_every_preset_is_checked() -> None:
    assert set(preset_names()) <= set(SPECS)
    assert len(preset_names()) >= 4


def test_lenet5_params_exact() -> None:
    assert model_cost(preset("lenet-5")).params == 431_080


# -------------------------------------------------------------------------------------------- FLOPs: profiler


def _profiled_flops(spec: ModelSpec) -> dict[str, int]:
    """FLOPs of every spec layer as TensorFlow's profiler counts them on the model's graph at batch 1.

    A layer's FLOPs are the profiler's FLOPs of the layer's ops whose output is the layer's whole
    output tensor (this leaves out BatchNorm's per-channel arithmetic on its statistics), plus one per
    element of each ReLU, ReLU6, tanh or sigmoid op, which the profiler does not count.
    """
    model = build_model(spec)
    function = tf.function(lambda x: model(x, training=False))
    graph = function.get_concrete_function(tf.TensorSpec((1, *spec.input_shape), tf.float32)).graph
    builder = tf.compat.v1.profiler.ProfileOptionBuilder
    options = builder(builder.float_operation()).with_empty_output().build()
    report = tf.compat.v1.profiler.profile(graph=graph, cmd="scope", options=options)

    node_flops: dict[str, int] = {}

    def walk(node: Any) -> None:
        node_flops[node.name] = int(node.float_ops)
        for child in node.children:
            walk(child)

    walk(report)
    names = spec.layer_names()
    output_shapes = dict(zip(names, spec.shapes, strict=True))
    flops = dict.fromkeys(names, 0)
    mac_ops: dict[str, list[str]] = {name: [] for name in names}
    for op in graph.get_operations():
        owner = _owner(op.name, names)
        if owner is None or not op.outputs:
            continue
        if op.type in ("MatMul", "Conv2D", "Conv2DBackpropInput"):
            mac_ops[owner].append(op.type)
        if tuple(op.outputs[0].shape) != (1, *output_shapes[owner]):
            continue
        flops[owner] += node_flops.get(op.name, 0)
        if op.type in UNCOUNTED_ACTIVATIONS:
            assert node_flops.get(op.name, 0) == 0, f"the profiler now counts {op.type}"
            flops[owner] += UNCOUNTED_ACTIVATIONS[op.type] * math.prod(output_shapes[owner])
    expected_mac = {"dense": ["MatMul"], "conv2d": ["Conv2D"], "conv2d_transpose": ["Conv2DBackpropInput"]}
    for layer in spec.layers:
        assert mac_ops[layer.name or ""] == expected_mac.get(layer.type, []), layer.name
    return flops


def _owner(op_name: str, layer_names: list[str]) -> str | None:
    """The spec layer whose name scope (``name`` or ``name_<n>``) holds a graph op."""
    for component in op_name.split("/"):
        for name in layer_names:
            if component == name or re.fullmatch(re.escape(name) + r"_\d+", component):
                return name
    return None


@pytest.fixture(scope="module")
def profiled() -> dict[str, dict[str, int]]:
    return {name: _profiled_flops(spec) for name, spec in SPECS.items()}


@pytest.mark.parametrize("name", list(SPECS))
def test_flops_per_layer_equal_tensorflow_profiler(name: str, profiled: dict[str, dict[str, int]]) -> None:
    costs = layer_costs(SPECS[name])
    assert {cost.name: cost.flops for cost in costs} == profiled[name]
    assert model_cost(SPECS[name]).flops == sum(profiled[name].values())


def test_profiler_sees_the_multiply_adds(profiled: dict[str, dict[str, int]]) -> None:
    # Guards the profiler check itself: the heavy layers carry the bulk of the FLOPs it finds.
    assert profiled["lenet-5"]["conv2"] == 2 * 8 * 8 * 5 * 5 * 20 * 50 + 8 * 8 * 50
    assert profiled["mnist-autoencoder"]["dec1"] == 2 * 7 * 7 * 3 * 3 * 64 * 32 + 14 * 14 * 32


# ----------------------------------------------------------------------------------------- FLOPs: naive loops


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's SAME padding (before, after) of a convolution along one axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def naive_dense(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None) -> tuple[np.ndarray, int, int]:
    """y = x·W + b by loops; returns (y, multiply-adds, bias adds)."""
    fan_in, units = kernel.shape
    y = np.zeros(units)
    macs = adds = 0
    for j in range(units):
        for i in range(fan_in):
            y[j] += x[i] * kernel[i, j]
            macs += 1
        if bias is not None:
            y[j] += bias[j]
            adds += 1
    return y, macs, adds


def naive_conv2d(
    x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None, strides: tuple[int, int], padding: str
) -> tuple[np.ndarray, int, int]:
    """Channels-last 2-D convolution of one image by loops (zero padding multiplied like any input)."""
    kh, kw, c_in, c_out = kernel.shape
    (sh, sw), (h, w, _) = strides, x.shape
    if padding == "same":
        x = np.pad(x, (_same_padding(h, kh, sh), _same_padding(w, kw, sw), (0, 0)))
    out_h, out_w = (x.shape[0] - kh) // sh + 1, (x.shape[1] - kw) // sw + 1
    y = np.zeros((out_h, out_w, c_out))
    macs = adds = 0
    for oy in range(out_h):
        for ox in range(out_w):
            for co in range(c_out):
                for ky in range(kh):
                    for kx in range(kw):
                        for ci in range(c_in):
                            y[oy, ox, co] += x[oy * sh + ky, ox * sw + kx, ci] * kernel[ky, kx, ci, co]
                            macs += 1
                if bias is not None:
                    y[oy, ox, co] += bias[co]
                    adds += 1
    return y, macs, adds


def naive_conv2d_transpose(
    x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None, strides: tuple[int, int], padding: str
) -> tuple[np.ndarray, int, int]:
    """Channels-last transposed convolution of one image by loops: each input scatters a full kernel.

    ``kernel`` has Keras's layout (kh, kw, filters, c_in).
    """
    kh, kw, c_out, c_in = kernel.shape
    (sh, sw), (h, w, _) = strides, x.shape
    full = np.zeros(((h - 1) * sh + kh, (w - 1) * sw + kw, c_out))
    macs = adds = 0
    for iy in range(h):
        for ix in range(w):
            for ci in range(c_in):
                for ky in range(kh):
                    for kx in range(kw):
                        for co in range(c_out):
                            full[iy * sh + ky, ix * sw + kx, co] += x[iy, ix, ci] * kernel[ky, kx, co, ci]
                            macs += 1
    if padding == "same":
        out_h, out_w = h * sh, w * sw
        top, left = max(kh - sh, 0) // 2, max(kw - sw, 0) // 2
    else:
        out_h, out_w = h * sh + max(kh - sh, 0), w * sw + max(kw - sw, 0)
        top = left = 0
    y = np.zeros((out_h, out_w, c_out))
    cropped = full[top : top + out_h, left : left + out_w]
    y[: cropped.shape[0], : cropped.shape[1]] = cropped
    if bias is not None:
        for index in np.ndindex(y.shape):
            y[index] += bias[index[-1]]
            adds += 1
    return y, macs, adds


Naive = Callable[..., tuple[np.ndarray, int, int]]

LOOP_CASES: list[tuple[dict[str, Any], tuple[int, ...]]] = [
    ({"type": "dense", "units": 4}, (6,)),
    ({"type": "dense", "units": 3, "use_bias": False}, (5,)),
    ({"type": "conv2d", "filters": 3, "kernel_size": 3}, (6, 5, 2)),
    (
        {"type": "conv2d", "filters": 2, "kernel_size": [3, 2], "strides": [2, 1], "padding": "same"},
        (5, 6, 3),
    ),
    (
        {
            "type": "conv2d",
            "filters": 2,
            "kernel_size": 4,
            "strides": 3,
            "padding": "same",
            "use_bias": False,
        },
        (7, 5, 2),
    ),
    ({"type": "conv2d", "filters": 1, "kernel_size": 2, "strides": 2}, (5, 5, 1)),
    (
        {"type": "conv2d_transpose", "filters": 3, "kernel_size": 3, "strides": 2, "padding": "valid"},
        (3, 4, 2),
    ),
    (
        {"type": "conv2d_transpose", "filters": 2, "kernel_size": 3, "strides": 2, "padding": "same"},
        (3, 3, 2),
    ),
    (
        {
            "type": "conv2d_transpose",
            "filters": 2,
            "kernel_size": [4, 2],
            "strides": [1, 3],
            "padding": "same",
            "use_bias": False,
        },
        (3, 2, 3),
    ),
    (
        {"type": "conv2d_transpose", "filters": 2, "kernel_size": 2, "strides": 3, "padding": "valid"},
        (2, 3, 1),
    ),
    (
        {"type": "conv2d_transpose", "filters": 1, "kernel_size": [5, 3], "strides": 1, "padding": "valid"},
        (2, 2, 2),
    ),
]


@pytest.mark.parametrize(("fields", "input_shape"), LOOP_CASES)
def test_flops_equal_naive_loop_count(fields: dict[str, Any], input_shape: tuple[int, ...]) -> None:
    spec = ModelSpec.model_validate({"input_shape": input_shape, "layers": [{"name": "layer", **fields}]})
    layer = spec.layers[0]
    assert isinstance(layer, DenseLayer | Conv2DLayer | Conv2DTransposeLayer)
    model = build_model(spec)
    keras_layer = model.get_layer("layer")
    rng = np.random.default_rng(len(input_shape) * 100 + sum(input_shape))
    weights = [rng.normal(size=w.shape) for w in keras_layer.get_weights()]
    keras_layer.set_weights(weights)
    x = rng.normal(size=input_shape)
    bias = weights[1] if layer.use_bias else None
    if isinstance(layer, DenseLayer):
        y, macs, adds = naive_dense(x, weights[0], bias)
    elif isinstance(layer, Conv2DLayer):
        y, macs, adds = naive_conv2d(x, weights[0], bias, layer.strides, layer.padding)
    else:
        y, macs, adds = naive_conv2d_transpose(x, weights[0], bias, layer.strides, layer.padding)
    # The loops compute what Keras computes, so their counts are the work of the real operation.
    expected = np.asarray(model(x[np.newaxis].astype("float32")))[0]
    assert y.shape == expected.shape == spec.output_shape
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)
    assert layer_costs(spec)[0].flops == 2 * macs + adds


def test_activation_adds_one_flop_per_element() -> None:
    fields = {"type": "conv2d", "filters": 2, "kernel_size": 2, "use_bias": False}
    base = ModelSpec.model_validate({"input_shape": [4, 4, 1], "layers": [fields]})
    macs = 3 * 3 * 2 * 2 * 1 * 2
    assert layer_costs(base)[0].flops == 2 * macs
    for activation in ("relu", "tanh", "sigmoid"):
        spec = base.with_layer(0, activation=activation)
        assert layer_costs(spec)[0].flops == 2 * macs + 18


# --------------------------------------------------------------------------------------------- hand-checked


HAND_SPEC = ModelSpec.model_validate(
    {
        "input_shape": [6, 6, 2],
        "layers": [
            {"type": "conv2d", "name": "conv", "filters": 3, "kernel_size": 3, "activation": "relu"},
            {"type": "max_pool", "name": "pool", "pool_size": 2},
            {"type": "flatten", "name": "flat"},
            {"type": "dense", "name": "hidden", "units": 5, "activation": "tanh"},
            {"type": "dropout", "name": "drop", "rate": 0.25},
            {"type": "batch_norm", "name": "bn"},
            {"type": "activation", "name": "act", "activation": "sigmoid"},
            {"type": "activation", "name": "lin", "activation": "linear"},
            {"type": "dense", "name": "out", "units": 1, "use_bias": False},
        ],
    }
)

# conv: 6x6x2 -> 4x4x3: 3*3*2*3 + 3 = 57 params; 2*16*54 + 48 bias + 48 relu = 1824 FLOPs
# pool: 4x4x3 -> 2x2x3: 4 per output element * 12 = 48 FLOPs
# hidden: 12 -> 5: 60 + 5 = 65 params; 2*60 + 5 bias + 5 tanh = 130 FLOPs
# bn: 4*5 = 20 params; 2*5 = 10 FLOPs; act: 5 FLOPs; lin: 0
# out: 5 -> 1 without bias: 5 params; 10 FLOPs
HAND_COSTS = [
    LayerCost("conv", "conv2d", 57, 1824),
    LayerCost("pool", "max_pool", 0, 48),
    LayerCost("flat", "flatten", 0, 0),
    LayerCost("hidden", "dense", 65, 130),
    LayerCost("drop", "dropout", 0, 0),
    LayerCost("bn", "batch_norm", 20, 10),
    LayerCost("act", "activation", 0, 5),
    LayerCost("lin", "activation", 0, 0),
    LayerCost("out", "dense", 5, 10),
]


def test_hand_checked_small_model() -> None:
    assert layer_costs(HAND_SPEC) == HAND_COSTS
    cost = model_cost(HAND_SPEC)
    assert cost == ModelCost(layers=HAND_COSTS, params=147, flops=2027)


def test_hand_checked_lenet5_flops() -> None:
    # conv1 24x24x20 from 5x5x1, pool1 12x12x20, conv2 8x8x50 from 5x5x20, pool2 4x4x50, ip1 800->500 ReLU
    flops = [
        2 * 24 * 24 * 25 * 20 + 24 * 24 * 20,
        4 * 12 * 12 * 20,
        2 * 8 * 8 * 25 * 20 * 50 + 8 * 8 * 50,
        4 * 4 * 4 * 50,
        0,
        2 * 800 * 500 + 500 + 500,
        2 * 500 * 10 + 10,
    ]
    assert [cost.flops for cost in layer_costs(preset("lenet-5"))] == flops
    assert model_cost(preset("lenet-5")).flops == 4_616_450


def test_transpose_valid_counts_input_positions() -> None:
    # 3x3x4 -> 7x7x2 with a 3x3 kernel, stride 2: 9 input positions each scatter 3*3*4*2 = 72 products.
    spec = ModelSpec.model_validate(
        {
            "input_shape": [3, 3, 4],
            "layers": [{"type": "conv2d_transpose", "filters": 2, "kernel_size": 3, "strides": 2}],
        }
    )
    assert spec.output_shape == (7, 7, 2)
    assert layer_costs(spec)[0] == LayerCost("conv2d_transpose_0", "conv2d_transpose", 74, 2 * 9 * 72 + 98)


# --------------------------------------------------------------------------------------------- API


def test_as_dict_is_json_ready_and_complete() -> None:
    cost = model_cost(HAND_SPEC)
    data = json.loads(json.dumps(cost.as_dict()))
    assert data["params"] == 147
    assert data["flops"] == 2027
    assert data["layers"][0] == {"name": "conv", "type": "conv2d", "params": 57, "flops": 1824}
    assert [row["name"] for row in data["layers"]] == HAND_SPEC.layer_names()


def test_one_cost_per_layer_in_order() -> None:
    for spec in SPECS.values():
        costs = layer_costs(spec)
        assert [c.name for c in costs] == spec.layer_names()
        assert [c.type for c in costs] == [layer.type for layer in spec.layers]


def test_layer_cost_uses_given_shapes() -> None:
    layer = DenseLayer(units=3)
    assert layer_cost(layer, (4,), layer_output_shape(layer, (4,))) == LayerCost("dense", "dense", 15, 27)


def test_layer_cost_rejects_unknown_layers() -> None:
    with pytest.raises(TypeError, match="no cost model"):
        layer_cost(object(), (1,), (1,))  # type: ignore[arg-type]


def test_costs_module_does_not_import_tensorflow() -> None:
    code = (
        "import sys, prunespec.costs; "
        "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]; "
        "sys.exit(f'imported {bad}' if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
