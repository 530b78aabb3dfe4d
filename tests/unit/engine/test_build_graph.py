"""Graphs in the engine: build_model builds any spec graph, model_to_spec reads Keras graphs back."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest

from prunespec.layers import ModelSpec
from prunespec.spec import TrainingSpec
from worker.engine.build import (
    UnsupportedLayerError,
    build_model,
    layer_weights,
    model_to_spec,
    read_model,
    set_layer_weights,
)

#: Every layer type and every activation of the language, in one small graph.
EVERY_TYPE = ModelSpec.model_validate(
    {
        "input_shape": [8, 8, 2],
        "layers": [
            {"type": "zero_padding2d", "name": "pad", "padding": [[1, 0], [0, 2]]},
            {"type": "conv2d", "name": "stem", "filters": 4, "kernel_size": 3, "activation": "relu6"},
            {
                "type": "depthwise_conv2d",
                "name": "dw",
                "kernel_size": 3,
                "padding": "same",
                "use_bias": False,
            },
            {"type": "batch_norm", "name": "dw_bn", "momentum": 0.8},
            {"type": "activation", "name": "dw_act", "activation": "hard_swish"},
            {"type": "separable_conv2d", "name": "sep", "filters": 4, "kernel_size": 3, "padding": "same"},
            {"type": "add", "name": "sum", "inputs": ["stem", "sep"]},
            {"type": "global_avg_pool", "name": "squeeze", "keepdims": True},
            {"type": "conv2d", "name": "gate", "filters": 4, "kernel_size": 1, "activation": "sigmoid"},
            {"type": "multiply", "name": "scaled", "inputs": ["sum", "gate"]},
            {"type": "concatenate", "name": "cat", "inputs": ["scaled", "stem"]},
            {"type": "max_pool", "name": "pool", "pool_size": 2},
            {"type": "avg_pool", "name": "apool", "pool_size": 1},
            {"type": "upsampling2d", "name": "up", "size": 2},
            {"type": "conv2d_transpose", "name": "deconv", "filters": 2, "kernel_size": 2, "strides": 2},
            {"type": "global_max_pool", "name": "gmax"},
            {"type": "reshape", "name": "rs", "target_shape": [1, 2]},
            {"type": "flatten", "name": "flat"},
            {"type": "dropout", "name": "drop", "rate": 0.25},
            {"type": "dense", "name": "d_gelu", "units": 3, "activation": "gelu"},
            {"type": "dense", "name": "d_silu", "units": 3, "activation": "silu"},
            {"type": "dense", "name": "d_leaky", "units": 3, "activation": "leaky_relu"},
            {"type": "dense", "name": "d_tanh", "units": 3, "activation": "tanh", "use_bias": False},
            {"type": "dense", "name": "out", "units": 2, "activation": "softmax"},
        ],
    }
)


def _same_outputs(a: keras.Model, b: keras.Model, shape: tuple[int, ...], seed: int = 0) -> float:
    x = np.random.default_rng(seed).normal(size=(3, *shape)).astype(np.float32)
    return float(np.abs(np.asarray(a(x)) - np.asarray(b(x))).max())


def test_every_layer_type_builds_and_reads_back_to_the_same_spec() -> None:
    model = build_model(EVERY_TYPE)
    assert [layer.name for layer in model.layers[1:]] == EVERY_TYPE.layer_names()
    assert tuple(model.output.shape[1:]) == EVERY_TYPE.output_shape
    assert model_to_spec(model) == EVERY_TYPE


def test_swish_reads_back_as_its_keras_name_silu() -> None:
    spec = ModelSpec.model_validate(
        {"input_shape": [3], "layers": [{"type": "dense", "units": 2, "activation": "swish"}]}
    )
    assert model_to_spec(build_model(spec)).layers[0].model_dump()["activation"] == "silu"


def test_build_model_keeps_penalties_on_prunable_layers() -> None:
    spec = ModelSpec.model_validate(
        {
            "input_shape": [6, 6, 1],
            "layers": [
                {"type": "separable_conv2d", "name": "sep", "filters": 3, "kernel_size": 3},
                {"type": "global_avg_pool", "name": "gap"},
                {"type": "dense", "name": "out", "units": 2},
            ],
        }
    )
    training = TrainingSpec(group_lasso=0.1, activity_l1=0.1)
    penalised = build_model(spec, training)
    assert penalised.get_layer("sep").pointwise_regularizer.group_lasso == 0.1
    assert penalised.get_layer("sep").activity_regularizer is not None
    assert penalised.get_layer("out").activity_regularizer is None
    plain = build_model(spec, training, prunable=[])
    assert plain.get_layer("sep").pointwise_regularizer is None


def _resnet_block_model() -> keras.Model:
    """A hand-made functional ResNet stage: projection shortcut, a nested block model, Keras auto-names."""
    inner_in = keras.Input((8, 8, 6))
    y = keras.layers.Conv2D(6, 3, padding="same", use_bias=False, name="inner_conv")(inner_in)
    y = keras.layers.BatchNormalization(name="inner_bn")(y)
    y = keras.layers.ReLU(max_value=6.0, name="inner-relu6")(y)
    inner = keras.Model(inner_in, keras.layers.Add(name="inner_add")([inner_in, y]), name="block")

    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="input")(inputs)  # "input" is reserved in a spec
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    main = keras.layers.Conv2D(6, 3, strides=2, padding="same", name="2nd_conv")(x)
    main = keras.layers.BatchNormalization(name="main_bn")(main)
    shortcut = keras.layers.Conv2D(6, 1, strides=2, name="proj")(x)
    x = keras.layers.Add(name="add")([main, shortcut])
    x = keras.layers.LeakyReLU(negative_slope=0.2, name="leaky")(x)
    x = inner(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(5, name="logits")(x)
    outputs = keras.layers.Softmax(name="probs")(x)
    return keras.Model(inputs, outputs, name="resnet_block")


def _randomise(model: keras.Model, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = weights
            weights = [
                gamma + rng.normal(0, 0.2, gamma.shape),
                beta,
                mean,
                variance + rng.random(variance.shape),
            ]
        layer.set_weights([np.asarray(w, dtype=np.float32) for w in weights])


def test_a_functional_resnet_block_with_a_nested_model_converts_exactly() -> None:
    original = _resnet_block_model()
    _randomise(original)
    read = read_model(original)
    spec = read.spec
    names = spec.layer_names()
    assert "input" not in names and "2nd_conv" not in names
    assert read.names["2nd_conv"] in names and read.names["input"] in names
    assert spec.layer_by_name("inner_relu6").model_dump()["activation"] == "relu6"
    assert spec.layer_by_name("inner_add").inputs == (read.names["leaky"], "inner_relu6")
    assert spec.layer_by_name("probs").type == "activation"
    rebuilt = build_model(spec)
    set_layer_weights(rebuilt, read.weights)
    assert _same_outputs(original, rebuilt, (16, 16, 3)) <= 1e-5


def test_mobilenet_v2_converts_builds_and_keeps_its_outputs() -> None:
    original = keras.applications.MobileNetV2(weights=None, alpha=0.35, input_shape=(32, 32, 3), classes=10)
    _randomise(original)
    read = read_model(original)
    assert {layer.type for layer in read.spec.layers} >= {"depthwise_conv2d", "add", "zero_padding2d"}
    rebuilt = build_model(read.spec)
    assert rebuilt.count_params() == original.count_params()
    set_layer_weights(rebuilt, read.weights)
    assert _same_outputs(original, rebuilt, (32, 32, 3)) <= 1e-5


def test_weights_read_by_spec_name_match_layer_weights_of_the_rebuilt_model() -> None:
    model = build_model(EVERY_TYPE)
    read = read_model(model)
    expected = layer_weights(model)
    assert read.weights.keys() == expected.keys()
    assert all(
        np.array_equal(a, b)
        for name in expected
        for a, b in zip(read.weights[name], expected[name], strict=True)
    )


def test_a_sequential_model_reads_and_a_never_built_one_is_refused_clearly() -> None:
    built = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, activation="relu"), keras.layers.Dense(1)]
    )
    spec = model_to_spec(built)
    assert spec.input_shape == (4,)
    assert spec.is_sequential()
    unbuilt = keras.Sequential([keras.layers.Dense(3), keras.layers.Dense(1)], name="plain")
    with pytest.raises(UnsupportedLayerError, match=r"model 'plain' has no input shape yet.*keras.Input"):
        model_to_spec(unbuilt)


def test_a_model_with_unknown_image_sizes_is_refused_clearly() -> None:
    inputs = keras.Input((None, None, 3), name="image")
    model = keras.Model(inputs, keras.layers.Conv2D(2, 3)(inputs), name="open")
    with pytest.raises(UnsupportedLayerError, match=r"model 'open' has input shape \(None, None, 3\)"):
        model_to_spec(model)


class _Scaled(keras.layers.Dense):
    pass


def _one_layer(layer: keras.layers.Layer, shape: tuple[int, ...] = (6, 6, 2)) -> keras.Model:
    inputs = keras.Input(shape)
    return keras.Model(inputs, layer(inputs))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: _one_layer(keras.layers.Lambda(lambda x: x * 2, name="double")),
            r"'double' \(Lambda\): not in",
        ),
        (lambda: _one_layer(_Scaled(2, name="mine"), (3,)), r"'mine' \(_Scaled\): a subclass of Dense"),
        (
            lambda: _one_layer(keras.layers.DepthwiseConv2D(3, depth_multiplier=2, name="dw2")),
            r"'dw2' \(DepthwiseConv2D\): depth_multiplier=2",
        ),
        (
            lambda: _one_layer(keras.layers.Conv2D(2, 3, dilation_rate=2, name="dil")),
            r"'dil' \(Conv2D\): dilation_rate \(2, 2\)",
        ),
        (
            lambda: _one_layer(keras.layers.MaxPooling2D(data_format="channels_first", name="cf")),
            r"'cf' \(MaxPooling2D\): data_format 'channels_first'",
        ),
        (
            lambda: _one_layer(keras.layers.ReLU(max_value=4.0, name="r4")),
            r"'r4' \(ReLU\): ReLU with max_value=4.0",
        ),
        (lambda: _one_layer(keras.layers.Rescaling(0.5, name="scale")), r"'scale' \(Rescaling\): not in"),
        (
            lambda: _one_layer(keras.layers.Dense(2, activation="elu", name="elu"), (3,)),
            r"'elu' \(Dense\): activation 'elu'",
        ),
    ],
)
def test_unsupported_layers_are_named_with_the_reason(make: Any, message: str) -> None:
    with pytest.raises(UnsupportedLayerError, match=message):
        model_to_spec(make())


def test_a_shared_layer_is_refused() -> None:
    inputs = keras.Input((3,))
    shared = keras.layers.Dense(3, name="shared")
    model = keras.Model(inputs, keras.layers.Add()([shared(inputs), shared(shared(inputs))]))
    with pytest.raises(UnsupportedLayerError, match=r"'shared' \(Dense\): called more than once"):
        model_to_spec(model)
