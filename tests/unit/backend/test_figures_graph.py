"""The model drawn as a graph: rows by depth, branches aside, edges from inputs, widths labelled; and the
diff rows that feed it (a layer carrying several groups)."""

from __future__ import annotations

import json
from typing import Any

import plotly.graph_objects as go
import pytest

from backend.figures import CycleRow, LayerCostRow, architecture_diff
from backend.figures.graph import GraphNode, architecture_graph_figure, graph_layout
from backend.service.architecture import ModelGraph, diff_out
from prunespec.costs import model_cost
from prunespec.layers import ModelSpec

PAYLOAD = "<img src=x onerror=alert(1)>"

#: conv → bn → relu → conv → bn → add(bn2, relu) → flatten → dense: a residual block.
RESIDUAL = [
    GraphNode("c1", "conv2d", ("input",), 8, 5, ("c1",)),
    GraphNode("b1", "batch_norm", ("c1",), 8, 5, ("c1",)),
    GraphNode("r1", "activation", ("b1",), 8, 5, ("c1",)),
    GraphNode("c2", "conv2d", ("r1",), 8, 5, ("c1",)),
    GraphNode("b2", "batch_norm", ("c2",), 8, 5, ("c1",)),
    GraphNode("sum", "add", ("b2", "r1"), 8, 5, ("c1",)),
    GraphNode("flat", "flatten", ("sum",)),
    GraphNode("out", "dense", ("flat",), 10, 10, ("out",), fixed=True),
]


def trace(fig: dict[str, Any], name: str) -> dict[str, Any]:
    return next(one for one in fig["data"] if one["name"] == name)


def test_a_chain_stays_in_one_column_one_row_per_layer() -> None:
    chain = [GraphNode(f"d{i}", "dense", ("input",) if i == 0 else (f"d{i - 1}",)) for i in range(4)]
    assert graph_layout(chain) == {"input": (0, 0), "d0": (1, 0), "d1": (2, 0), "d2": (3, 0), "d3": (4, 0)}


def test_a_branch_takes_the_next_column_and_a_join_sits_below_its_deepest_input() -> None:
    nodes = [
        GraphNode("a", "conv2d", ("input",)),
        GraphNode("b", "conv2d", ("a",)),
        GraphNode("shortcut", "conv2d", ("a",)),
        GraphNode("c", "batch_norm", ("b",)),
        GraphNode("sum", "add", ("c", "shortcut")),
    ]
    place = graph_layout(nodes)
    assert place["b"] == (2, 0) and place["shortcut"] == (2, 1)
    assert place["sum"] == (4, 0)


def test_a_layer_reading_an_unknown_name_is_named() -> None:
    with pytest.raises(ValueError, match="layer 'b' reads 'ghost'"):
        graph_layout([GraphNode("a", "dense", ("input",)), GraphNode("b", "add", ("a", "ghost"))])


def test_edges_join_every_layer_to_each_of_its_inputs_and_a_skip_bows_around_the_block() -> None:
    fig = architecture_graph_figure(RESIDUAL, (8, 8, 1))
    edges = trace(fig, "inputs")
    segments: list[list[tuple[float, float]]] = [[]]
    for x, y in zip(edges["x"], edges["y"], strict=True):
        if x is None:
            segments.append([])
        else:
            segments[-1].append((x, y))
    segments = [one for one in segments if one]
    assert len(segments) == sum(len(node.inputs) for node in RESIDUAL)
    skip = next(one for one in segments if one[0] == (0.0, -3.0) and one[-1] == (0.0, -6.0))
    assert len(skip) == 4 and skip[1][0] < 0  # out to the left of c2 and b2, then back in
    straight = next(one for one in segments if one[0] == (0.0, -5.0))
    assert straight == [(0.0, -5.0), (0.0, -6.0)]


def test_nodes_are_coloured_by_what_pruning_did_and_labelled_with_widths() -> None:
    fig = architecture_graph_figure(RESIDUAL, (8, 8, 1))
    pruned = trace(fig, "pruned")
    assert pruned["text"][0] == "c1  8 → 5"
    assert pruned["text"][5] == "sum  8 → 5"
    assert trace(fig, "fixed (cannot shrink)")["text"] == ["out  10"]
    assert trace(fig, "no channel group")["text"] == ["flat"]
    assert trace(fig, "input")["text"] == ["input 8×8×1"]
    assert "inputs: b2, r1" in pruned["hovertext"][5]
    assert fig["layout"]["height"] > 8 * 30


def test_the_graph_is_strict_json_and_valid_plotly() -> None:
    fig = architecture_graph_figure(RESIDUAL, (8, 8, 1), uirevision="exp-3")
    go.Figure(json.loads(json.dumps(fig, allow_nan=False)))
    assert fig["layout"]["uirevision"] == "exp-3"
    empty = architecture_graph_figure([])
    assert empty["data"] == [] and empty["layout"]["annotations"][0]["text"] == "No layers"


def test_layer_names_reach_the_graph_only_escaped() -> None:
    nodes = [GraphNode(PAYLOAD, "dense", ("input",), 4, 2, (PAYLOAD,))]
    fig = architecture_graph_figure(nodes)
    text = json.dumps(fig)
    assert "<img" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in trace(fig, "pruned")["text"][0]


def test_a_concatenation_carries_the_sum_of_its_groups_widths() -> None:

    model = ModelSpec.model_validate(
        {
            "input_shape": [4, 4, 1],
            "layers": [
                {"type": "conv2d", "name": "a", "filters": 2, "kernel_size": 1, "inputs": ["input"]},
                {"type": "conv2d", "name": "b", "filters": 3, "kernel_size": 1, "inputs": ["input"]},
                {"type": "concatenate", "name": "cat", "inputs": ["a", "b"]},
                {"type": "global_avg_pool", "name": "pool"},
                {"type": "dense", "name": "out", "units": 2},
            ],
        }
    )
    kept = model.with_widths({"a": 1})
    costs = [LayerCostRow(one.name, one.type, one.params, one.flops) for one in model_cost(model).layers]
    before = CycleRow(0, model.widths(), kept.widths(), 0, 0, layer_costs=costs)

    layers, groups, fig = diff_out(
        architecture_diff(before), ModelGraph.of(model), ModelGraph.of(kept), kept.widths(), uirevision="u"
    )

    rows = {row.name: row for row in layers}
    assert rows["cat"].groups == ["a", "b"] and rows["cat"].inputs == ["a", "b"]
    assert (rows["cat"].width_before, rows["cat"].width_after, rows["cat"].change) == (5, 4, "pruned")
    assert [(group.name, group.width_before, group.width_after) for group in groups][:2] == [
        ("a", 2, 1),
        ("b", 3, 3),
    ]
    assert "cat  5 → 4" in trace(fig, "pruned")["text"]
    assert graph_layout([GraphNode(n, "", tuple(r.inputs)) for n, r in rows.items()])["b"] == (1, 1)
