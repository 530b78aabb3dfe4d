"""The model language as a graph: inputs, wiring checks, shape inference and the spec's graph helpers."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from prunespec.layers import DenseLayer, ModelSpec, infer_input_shapes, infer_shapes
from prunespec.presets import preset, preset_names


def _spec(input_shape: list[int], *layers: dict[str, Any]) -> ModelSpec:
    return ModelSpec.model_validate({"input_shape": input_shape, "layers": list(layers)})


def _residual() -> ModelSpec:
    return _spec(
        [8, 8, 3],
        {"type": "conv2d", "name": "stem", "filters": 4, "kernel_size": 3, "padding": "same"},
        {"type": "conv2d", "name": "a", "filters": 4, "kernel_size": 3, "padding": "same"},
        {"type": "batch_norm", "name": "a_bn"},
        {"type": "add", "name": "sum", "inputs": ["stem", "a_bn"]},
        {"type": "activation", "name": "relu", "activation": "relu6"},
        {"type": "global_avg_pool", "name": "gap"},
        {"type": "dense", "name": "head", "units": 3},
    )


def test_omitted_inputs_mean_the_previous_layer_and_the_first_layer_reads_the_input() -> None:
    spec = preset("lenet-5")
    assert [layer.inputs for layer in spec.layers[:3]] == [("input",), ("conv1",), ("pool1",)]
    assert spec.is_sequential()


def test_every_preset_keeps_its_dump_free_of_implied_inputs() -> None:
    for name in ("sum-mlp", "lenet-300-100", "lenet-5", "mnist-autoencoder"):
        assert all("inputs" not in row for row in preset(name).model_dump()["layers"])


def test_a_residual_graph_infers_shapes_and_knows_its_wiring() -> None:
    spec = _residual()
    assert spec.shapes == [(8, 8, 4), (8, 8, 4), (8, 8, 4), (8, 8, 4), (8, 8, 4), (4,), (3,)]
    assert spec.input_shapes("sum") == [(8, 8, 4), (8, 8, 4)]
    assert spec.input_shapes(0) == [(8, 8, 3)]
    assert spec.consumers_of("stem") == ["a", "sum"]
    assert spec.consumers_of("input") == ["stem"]
    assert spec.layer_by_name("sum").inputs == ("stem", "a_bn")
    assert not spec.is_sequential()
    assert infer_shapes(spec.input_shape, spec.layers) == spec.shapes
    assert infer_input_shapes(spec.input_shape, spec.layers)[3] == ((8, 8, 4), (8, 8, 4))


def test_a_graph_round_trips_and_keeps_only_the_inputs_it_needs() -> None:
    spec = _residual()
    rows = spec.model_dump()["layers"]
    assert rows[3]["inputs"] == ("stem", "a_bn")
    assert "inputs" not in rows[1]
    assert ModelSpec.model_validate_json(spec.model_dump_json()) == spec


def test_inputs_accept_one_name_as_a_string() -> None:
    spec = _spec(
        [4], {"type": "dense", "name": "a", "units": 2}, {"type": "dense", "units": 1, "inputs": "a"}
    )
    assert spec.layers[1].inputs == ("a",)


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        (
            [{"type": "dense", "name": "a", "units": 2, "inputs": ["nope"]}],
            r"layer 0 \(dense 'a'\): input 'nope' is not a layer of this model",
        ),
        (
            [
                {"type": "dense", "name": "a", "units": 2, "inputs": ["b"]},
                {"type": "dense", "name": "b", "units": 2},
            ],
            r"layer 0 \(dense 'a'\): input 'b' is not an earlier layer \(a forward reference or a cycle\)",
        ),
        (
            [{"type": "dense", "name": "a", "units": 2, "inputs": ["a"]}],
            r"layer 0 \(dense 'a'\): input 'a' is not an earlier layer",
        ),
        (
            [
                {"type": "dense", "name": "a", "units": 2},
                {"type": "dense", "name": "b", "units": 3, "inputs": ["input"]},
                {"type": "add", "name": "s", "inputs": ["a", "b"]},
            ],
            r"layer 2 \(add 's'\): inputs 'a' \(2,\) and 'b' \(3,\) disagree in shape",
        ),
        (
            [{"type": "dense", "name": "a", "units": 2}, {"type": "add", "name": "s"}],
            r"layer 1 \(add 's'\): takes at least 2 inputs but is given 1",
        ),
        (
            [
                {"type": "dense", "name": "a", "units": 2},
                {"type": "dense", "name": "b", "units": 2, "inputs": ["input", "a"]},
            ],
            r"layer 1 \(dense 'b'\): takes one input but is given 2",
        ),
        (
            [
                {"type": "dense", "name": "a", "units": 2},
                {"type": "dense", "name": "b", "units": 2, "inputs": ["input"]},
            ],
            r"layer 0 \(dense 'a'\): its output reaches no later layer",
        ),
    ],
)
def test_bad_wiring_names_the_layer(layers: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _spec([4], *layers)


def test_concatenate_joins_channels_and_refuses_other_axes() -> None:
    branches: list[dict[str, Any]] = [
        {"type": "conv2d", "name": "a", "filters": 2, "kernel_size": 1},
        {"type": "conv2d", "name": "b", "filters": 3, "kernel_size": 1, "inputs": "input"},
    ]
    head: list[dict[str, Any]] = [{"type": "flatten"}, {"type": "dense", "units": 1}]
    spec = _spec([4, 4, 1], *branches, {"type": "concatenate", "name": "cat", "inputs": ["a", "b"]}, *head)
    assert spec.shapes[2] == (4, 4, 5)
    assert _spec([4, 4, 1], *branches, {"type": "concatenate", "axis": 3, "inputs": ["a", "b"]}, *head)
    with pytest.raises(
        ValidationError, match=r"layer 2 \(concatenate 'cat'\): concatenate joins channels only"
    ):
        _spec(
            [4, 4, 1],
            *branches,
            {"type": "concatenate", "name": "cat", "axis": 1, "inputs": ["a", "b"]},
            *head,
        )


def test_multiply_takes_a_channel_gate_but_not_other_broadcasts() -> None:
    layers: list[dict[str, Any]] = [
        {"type": "conv2d", "name": "map", "filters": 4, "kernel_size": 1},
        {"type": "global_avg_pool", "name": "squeeze", "keepdims": True},
        {"type": "conv2d", "name": "excite", "filters": 4, "kernel_size": 1, "activation": "sigmoid"},
        {"type": "multiply", "name": "scale", "inputs": ["map", "excite"]},
        {"type": "global_max_pool"},
        {"type": "dense", "units": 2},
    ]
    spec = _spec([5, 5, 2], *layers)
    assert spec.shapes[1:4] == [(1, 1, 4), (1, 1, 4), (5, 5, 4)]
    layers[2] = {**layers[2], "filters": 3}
    with pytest.raises(
        ValidationError, match=r"layer 3 \(multiply 'scale'\): inputs 'map' \(5, 5, 4\) and 'excite'"
    ):
        _spec([5, 5, 2], *layers)


@pytest.mark.parametrize(
    ("layer", "shape"),
    [
        ({"type": "depthwise_conv2d", "kernel_size": 3, "strides": 2, "padding": "same"}, (3, 3, 2)),
        ({"type": "separable_conv2d", "filters": 5, "kernel_size": 3}, (4, 4, 5)),
        ({"type": "zero_padding2d", "padding": 1}, (8, 8, 2)),
        ({"type": "zero_padding2d", "padding": [[0, 1], [2, 3]]}, (7, 11, 2)),
        ({"type": "zero_padding2d", "padding": [1, 2]}, (8, 10, 2)),
        ({"type": "upsampling2d", "size": 2}, (12, 12, 2)),
        ({"type": "reshape", "target_shape": [3, -1]}, (3, 24)),
        ({"type": "reshape", "target_shape": [72]}, (72,)),
        ({"type": "global_avg_pool"}, (2,)),
        ({"type": "global_max_pool", "keepdims": True}, (1, 1, 2)),
        ({"type": "activation", "activation": "hard_swish"}, (6, 6, 2)),
    ],
)
def test_new_layer_types_infer_their_shapes(layer: dict[str, Any], shape: tuple[int, ...]) -> None:
    spec = _spec([6, 6, 2], layer, {"type": "flatten"}, {"type": "dense", "units": 1})
    assert spec.shapes[0] == shape


def test_a_reshape_that_does_not_fit_names_the_layer() -> None:
    with pytest.raises(ValidationError, match=r"layer 0 \(reshape 'reshape_0'\): cannot reshape \(6,\)"):
        _spec([6], {"type": "reshape", "target_shape": [4]}, {"type": "dense", "units": 1})


@pytest.mark.parametrize(
    "activation", ["relu6", "swish", "silu", "hard_swish", "gelu", "leaky_relu", "softmax"]
)
def test_new_activations_are_layer_activations(activation: str) -> None:
    spec = _spec([3], {"type": "dense", "units": 2, "activation": activation}, {"type": "dense", "units": 1})
    layer = spec.layers[0]
    assert isinstance(layer, DenseLayer)
    assert layer.activation == activation


def test_widths_and_with_widths_cover_separable_convolutions() -> None:
    spec = _spec(
        [6, 6, 2],
        {"type": "separable_conv2d", "name": "sep", "filters": 4, "kernel_size": 3},
        {"type": "depthwise_conv2d", "name": "dw", "kernel_size": 3},
        {"type": "global_avg_pool"},
        {"type": "dense", "name": "out", "units": 2},
    )
    assert spec.widths() == {"sep": 4, "out": 2}
    assert spec.with_widths({"sep": 3}).shapes[1] == (2, 2, 3)
    assert spec.prunable_names() == ["sep"]


def test_presets_validate_as_graphs() -> None:
    for name in preset_names():
        spec = preset(name)
        assert spec.shapes[-1] == spec.output_shape
