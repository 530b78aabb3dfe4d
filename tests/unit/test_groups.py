"""Dependency groups: which channels of a graph go together, and why a group cannot shrink."""

from __future__ import annotations

from typing import Any

import pytest
from graph_specs import RESIDUAL
from graph_specs import conv as _conv
from graph_specs import model_spec as _spec
from graph_specs import relu as _relu

from prunespec.groups import Consumer, Group, dependency_groups, groups_by_name, tensor_layouts
from prunespec.layers import ModelSpec
from prunespec.presets import preset, preset_names


def residual_spec() -> ModelSpec:
    """stem → (conv, bn, relu, conv, bn) + stem → relu → global pool → dense."""
    return _spec([6, 6, 2], RESIDUAL)


def concat_spec() -> ModelSpec:
    """Two branches concatenated and normalised, read by a convolution and (flattened) by a dense layer;
    the two heads concatenated again before the output layer."""
    return _spec(
        [5, 5, 2],
        [
            _conv("a", 3),
            _conv("b", 2, inputs=["input"]),
            {"type": "concatenate", "name": "cat", "inputs": ["a", "b"]},
            {"type": "batch_norm", "name": "cat_bn"},
            _relu("cat_relu"),
            _conv("mix", 4),
            {"type": "global_avg_pool", "name": "mix_pool"},
            {"type": "flatten", "name": "flat", "inputs": ["cat_relu"]},
            {"type": "dense", "name": "head", "units": 2},
            {"type": "concatenate", "name": "both", "inputs": ["head", "mix_pool"]},
            {"type": "dense", "name": "out", "units": 2},
        ],
    )


def depthwise_se_spec() -> ModelSpec:
    """Expand → depthwise → squeeze-excitation multiply → project, as in a MobileNet block."""
    return _spec(
        [6, 6, 2],
        [
            _conv("expand", 4),
            _relu("expand_relu"),
            {"type": "depthwise_conv2d", "name": "dw", "kernel_size": 3},
            {"type": "batch_norm", "name": "dw_bn"},
            _relu("dw_relu"),
            {"type": "global_avg_pool", "name": "squeeze", "keepdims": True},
            _conv("reduce", 2, activation="relu"),
            _conv("excite", 4, activation="sigmoid"),
            {"type": "multiply", "name": "scale", "inputs": ["dw_relu", "excite"]},
            _conv("project", 3),
            {"type": "global_max_pool", "name": "pool"},
            {"type": "dense", "name": "out", "units": 2},
        ],
    )


def test_a_sequential_model_has_exactly_its_old_prunable_layers_as_groups() -> None:
    sequential = [preset(name) for name in preset_names() if preset(name).is_sequential()]
    assert len(sequential) >= 4
    for spec in sequential:
        assert spec.prunable_names() == [spec.layers[i].name for i in spec.prunable_indices()]
    groups = groups_by_name(preset("lenet-5"))
    assert groups["conv2"].members == ("pool2", "flatten")
    assert groups["conv2"].consumers == (Consumer("ip1", 0, "flatten"),)
    assert groups_by_name(preset("mnist-autoencoder"))["enc1"].probes == ("enc1_relu",)


def test_a_residual_add_ties_the_stem_and_the_block_output_together() -> None:
    groups = groups_by_name(residual_spec())
    assert groups["stem"] == Group(
        name="stem",
        width=4,
        producers=("stem", "c2"),
        members=("stem_bn", "stem_relu", "c2_bn", "sum", "sum_relu", "pool"),
        consumers=(Consumer("c1", 0), Consumer("out", 0)),
        probes=("stem_relu", "c2_bn", "sum_relu"),
        fixed=None,
    )
    assert groups["c1"].consumers == (Consumer("c2", 0),) and groups["c1"].fixed is None
    assert "c2" not in groups  # c2 is the residual group's second producer
    assert groups["out"].fixed == "feeds the model's output"
    assert residual_spec().prunable_names() == ["stem", "c1"]


def test_a_concatenation_maps_each_branch_to_its_channel_range() -> None:
    spec = concat_spec()
    groups = groups_by_name(spec)
    assert groups["a"].consumers == (Consumer("mix", 0), Consumer("head", 0, "flat"))
    assert groups["b"].consumers == (Consumer("mix", 3), Consumer("head", 3, "flat"))
    assert groups["b"].members == ("cat", "cat_bn", "cat_relu", "flat")
    layout = tensor_layouts(spec)["flat"]
    assert (layout.positions, layout.stride, layout.flatten) == (25, 5, "flat")
    assert groups["mix"].members == ("mix_pool", "both")
    assert groups["mix"].consumers == (Consumer("out", 2),) and groups["head"].consumers == (
        Consumer("out", 0),
    )
    assert spec.prunable_names() == ["a", "b", "mix", "head"]


def test_a_depthwise_convolution_and_a_gate_join_the_expanded_channels() -> None:
    groups = groups_by_name(depthwise_se_spec())
    expand = groups["expand"]
    assert expand.producers == ("expand", "excite")
    assert expand.members == ("expand_relu", "dw", "dw_bn", "dw_relu", "squeeze", "scale")
    assert expand.consumers == (Consumer("reduce", 0), Consumer("project", 0))
    assert expand.probes == ("expand_relu", "dw_relu", "excite", "scale")
    assert groups["reduce"].consumers == (Consumer("excite", 0),)
    assert [g.name for g in dependency_groups(depthwise_se_spec())] == ["expand", "reduce", "project", "out"]
    assert depthwise_se_spec().prunable_names() == ["expand", "reduce", "project"]


@pytest.mark.parametrize(
    ("layers", "group", "reason"),
    [
        (
            [
                _conv("c", 4),
                {"type": "reshape", "name": "r", "target_shape": [6, 6, 4]},
                _conv("d", 2),
                {"type": "flatten", "name": "f"},
                {"type": "dense", "name": "out", "units": 1},
            ],
            "c",
            "crosses a reshape",
        ),
        (
            [_conv("c", 2), {"type": "add", "name": "skip", "inputs": ["input", "c"]}, _conv("out", 1)],
            "c",
            "carries the model's input",
        ),
        (
            [
                _conv("c", 3),
                {"type": "activation", "name": "soft", "activation": "softmax"},
                _conv("out", 1),
            ],
            "c",
            "a softmax mixes its channels",
        ),
        ([_conv("c", 3), _conv("out", 2)], "out", "feeds the model's output"),
        (
            [
                _conv("c", 2),
                _conv("d", 2, inputs=["input"]),
                {"type": "concatenate", "name": "cat", "inputs": ["c", "d"]},
                {"type": "concatenate", "name": "twice", "inputs": ["c", "d"]},
                {"type": "add", "name": "sum", "inputs": ["cat", "twice"]},
                {"type": "concatenate", "name": "again", "inputs": ["sum", "c"]},
                _conv("out", 1),
            ],
            "c",
            "'again' holds the same channels twice",
        ),
    ],
)
def test_fixed_groups_say_why(layers: list[dict[str, Any]], group: str, reason: str) -> None:
    spec = _spec([6, 6, 2], layers)
    assert groups_by_name(spec)[group].fixed == reason
    assert group not in spec.prunable_names()


def test_the_graph_presets_group_residual_stages_and_gates() -> None:
    resnet = groups_by_name(preset("resnet-mini"))
    stage = [g for g in resnet.values() if "s2b1_proj" in g.producers]
    assert len(stage) == 1 and {"s2b1_conv2", "s2b2_conv2", "s2b3_conv2"} <= set(stage[0].producers)
    assert all(g.fixed is None for g in resnet.values() if g.name != "fc")
    mobilenet = groups_by_name(preset("mobilenet-v2-mini"))
    gated = [g for g in mobilenet.values() if any(p.endswith("se_expand") for p in g.producers)]
    assert gated and all(any(m.endswith("_dw") for m in g.members) for g in gated)
