"""Graph models over HTTP: the spec preview's dependency groups, bad graphs as 422s naming the layer, and
a graph experiment's architecture diff (inputs, groups, drawn graph) and figures per group."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from group_rows import group_stats_row, resized

from backend.db import session_scope
from backend.models import Cycle, Experiment, Status
from prunespec.costs import model_cost
from prunespec.layers import ModelSpec
from prunespec.presets import preset

#: stem → branch; add(branch, stem) → global pool → dense: the add ties stem and branch into one group.
RESIDUAL: dict[str, Any] = {
    "input_shape": [6, 6, 1],
    "layers": [
        {
            "type": "conv2d",
            "name": "stem",
            "filters": 4,
            "kernel_size": 3,
            "padding": "same",
            "activation": "relu",
        },
        {"type": "conv2d", "name": "branch", "filters": 4, "kernel_size": 3, "padding": "same"},
        {"type": "add", "name": "sum", "inputs": ["branch", "stem"]},
        {"type": "global_avg_pool", "name": "pool"},
        {"type": "dense", "name": "out", "units": 3},
    ],
}
#: The last convolution feeds a reshape: its channels cannot be told apart behind it.
RESHAPED: dict[str, Any] = {
    "input_shape": [4, 4, 1],
    "layers": [
        {
            "type": "conv2d",
            "name": "c1",
            "filters": 2,
            "kernel_size": 3,
            "padding": "same",
            "activation": "relu",
        },
        {"type": "conv2d", "name": "c2", "filters": 3, "kernel_size": 3, "padding": "same"},
        {"type": "reshape", "name": "r", "target_shape": [48]},
        {"type": "dense", "name": "out", "units": 2},
    ],
}


def _spec(model: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "graph",
        "model": copy.deepcopy(model),
        "dataset": {"name": "npz", "path": "x.npz", "target": "values"},
    }


def _preview(client: TestClient, model: dict[str, Any]) -> Any:
    return client.post("/api/specs/preview", json={"spec": _spec(model)})


def _groups(client: TestClient, model: dict[str, Any]) -> dict[str, dict[str, Any]]:
    response = _preview(client, model)
    assert response.status_code == 200, response.text
    return {group["name"]: group for group in response.json()["groups"]}


# --------------------------------------------------------------------------------------------- preview


def test_a_residual_add_makes_one_group_of_its_two_producers(sqlite_client: TestClient) -> None:
    groups = _groups(sqlite_client, RESIDUAL)

    assert list(groups) == ["stem", "out"]
    stem = groups["stem"]
    assert stem["producers"] == ["stem", "branch"] and stem["width"] == 4
    assert {"sum", "pool"} <= set(stem["members"])
    assert {"layer": "out", "offset": 0, "flatten": None} in stem["consumers"]
    assert stem["fixed"] is None
    assert groups["out"]["fixed"] == "feeds the model's output"


def test_a_group_behind_a_reshape_is_fixed_and_says_why(sqlite_client: TestClient) -> None:
    groups = _groups(sqlite_client, RESHAPED)

    assert groups["c1"]["fixed"] is None
    assert groups["c2"]["fixed"] == "crosses a reshape"
    response = _preview(sqlite_client, RESHAPED).json()
    assert response["cost"]["prunable_layers"] == ["c1"]


def test_a_sequential_preset_has_one_group_per_weighted_layer(sqlite_client: TestClient) -> None:
    response = sqlite_client.post(
        "/api/specs/preview", json={"spec": {**_spec(RESIDUAL), "model": "lenet-5"}}
    )
    assert response.status_code == 200, response.text
    groups = response.json()["groups"]

    assert [group["name"] for group in groups] == ["conv1", "conv2", "ip1", "ip2"]
    assert [group["fixed"] for group in groups] == [None, None, None, "feeds the model's output"]
    assert groups[1]["consumers"] == [{"layer": "ip1", "offset": 0, "flatten": "flatten"}]


def _broken(change: dict[str, Any], index: int) -> dict[str, Any]:
    model = copy.deepcopy(RESIDUAL)
    model["layers"][index].update(change)
    return model


def _dangling() -> dict[str, Any]:
    model = copy.deepcopy(RESIDUAL)
    model["layers"].insert(2, {"type": "global_max_pool", "name": "loose", "inputs": ["stem"]})
    return model


@pytest.mark.parametrize(
    ("model", "named"),
    [
        (_broken({"inputs": ["branch", "ghost"]}, 2), ("sum", "ghost")),  # unknown input
        (_broken({"inputs": ["sum"]}, 1), ("branch", "sum")),  # a forward reference (a cycle)
        (_broken({"padding": "valid"}, 1), ("branch", "stem")),  # the add's inputs disagree in shape
        (_broken({"type": "concatenate", "axis": 1}, 2), ("sum",)),  # not the channel axis
        (_dangling(), ("loose",)),  # never reaches the output
    ],
    ids=["unknown-input", "forward-reference", "add-shapes", "concat-axis", "dangling"],
)
def test_a_bad_graph_is_a_422_naming_the_layer(
    sqlite_client: TestClient, model: dict[str, Any], named: tuple[str, ...]
) -> None:
    response = _preview(sqlite_client, model)

    assert response.status_code == 422, response.text
    issues = response.json()["detail"]
    assert issues and issues[0]["loc"][:3] == ["body", "spec", "model"]
    message = " ".join(issue["msg"] for issue in issues)
    for name in named:
        assert f"'{name}'" in message, message


def test_the_parse_endpoint_also_answers_groups(sqlite_client: TestClient) -> None:
    text = "name: g\nmodel: lenet-300-100\ndataset: {name: npz, path: x.npz, target: labels}\n"
    response = sqlite_client.post("/api/specs/parse", content=text, headers={"Content-Type": "text/yaml"})

    assert response.status_code == 200, response.text
    assert [group["name"] for group in response.json()["groups"]] == ["fc1", "fc2", "fc3"]


# --------------------------------------------------------------------------------------------- diff


def _graph_experiment(app: FastAPI, widths: list[int]) -> int:
    """A graph experiment with one cycle per width of group ``stem`` (widths keyed by layer name, the
    statistics and removed channels by group name, as the recorder writes them)."""
    model = ModelSpec.model_validate(RESIDUAL)
    with session_scope(app.state.context.session_factory) as session:
        experiment = Experiment(
            name="residual",
            spec={**_spec(RESIDUAL), "pruning": {"criterion": {"type": "apoz", "k": 1.0}}},
            status=Status.succeeded.value,
        )
        session.add(experiment)
        session.flush()
        for index, width in enumerate(widths):
            trained = resized(model, {"stem": width})
            cost = model_cost(trained)
            kept = widths[index + 1] if index + 1 < len(widths) else width
            session.add(
                Cycle(
                    experiment_id=experiment.id,
                    index=index,
                    model_spec=trained.model_dump(mode="json"),
                    widths=trained.widths(),
                    widths_after=resized(model, {"stem": kept}).widths(),
                    params=cost.params,
                    flops=cost.flops,
                    layer_costs=[
                        {"name": one.name, "type": one.type, "params": one.params, "flops": one.flops}
                        for one in cost.layers
                    ],
                    removed={"stem": list(range(width - kept))},
                    folded={},
                    merged={},
                    metric_name="rmse",
                    loss=0.1,
                    metric=0.1,
                    val_loss=0.1,
                    val_metric=0.1,
                    train_seconds=1.0,
                    stats_seconds=0.1,
                    prune_seconds=0.1,
                    layers=[group_stats_row("stem", np.arange(width) * 10, outputs=100)],
                )
            )
        return int(experiment.id)


def test_the_diff_of_a_graph_lists_inputs_groups_and_draws_the_graph(
    sqlite_app: FastAPI, sqlite_client: TestClient
) -> None:
    experiment_id = _graph_experiment(sqlite_app, [4, 3])

    diff = sqlite_client.get(f"/api/experiments/{experiment_id}/architecture?before=0&after=1").json()

    layers = {layer["name"]: layer for layer in diff["layers"]}
    assert layers["sum"]["inputs"] == ["branch", "stem"]
    assert layers["stem"]["inputs"] == ["input"] and layers["pool"]["inputs"] == ["sum"]
    assert layers["sum"]["groups"] == ["stem"] and layers["branch"]["groups"] == ["stem"]
    assert (layers["branch"]["width_before"], layers["branch"]["width_after"]) == (4, 3)
    summed = layers["sum"]  # no channels of its own: its group's widths, no units of its own removed
    assert (summed["width_before"], summed["width_after"], summed["units_removed"]) == (4, 3, None)
    assert summed["change"] == "pruned" and layers["out"]["change"] == "unchanged"
    stem = next(group for group in diff["groups"] if group["name"] == "stem")
    assert (stem["producers"], stem["width_before"], stem["width_after"]) == (["stem", "branch"], 4, 3)
    pruned = next(trace for trace in diff["graph"]["data"] if trace["name"] == "pruned")
    assert "sum  4 → 3" in pruned["text"]
    own = sqlite_client.get(f"/api/experiments/{experiment_id}/architecture?before=0").json()
    assert next(group for group in own["groups"] if group["name"] == "stem")["width_after"] == 3


def test_a_sequential_diff_reads_each_layer_from_the_one_before(
    sqlite_app: FastAPI, sqlite_client: TestClient
) -> None:
    with session_scope(sqlite_app.state.context.session_factory) as session:
        experiment = Experiment(name="old", spec={"name": "old", "model": "sum-mlp"}, status="succeeded")
        session.add(experiment)
        session.flush()
        model = {"input_shape": [2], "layers": [{"type": "dense", "units": 8}, {"type": "dense", "units": 1}]}
        session.add(
            Cycle(
                experiment_id=experiment.id,
                index=0,
                model_spec=model,  # stored before layers had inputs
                widths={"dense_0": 8, "dense_1": 1},
                widths_after={"dense_0": 5, "dense_1": 1},
                params=33,
                flops=60,
                layer_costs=[],
                removed={},
                folded={},
                merged={},
                metric_name="rmse",
                train_seconds=1.0,
                stats_seconds=0.1,
                prune_seconds=0.1,
            )
        )
        session.flush()
        experiment_id = experiment.id

    diff = sqlite_client.get(f"/api/experiments/{experiment_id}/architecture?before=0").json()

    assert [layer["inputs"] for layer in diff["layers"]] == [["input"], ["dense_0"]]
    assert [group["width_after"] for group in diff["groups"]] == [5, 1]
    assert len(diff["graph"]["data"]) >= 2


def test_figures_of_a_graph_experiment_are_drawn_per_group(
    sqlite_app: FastAPI, sqlite_client: TestClient
) -> None:
    experiment_id = _graph_experiment(sqlite_app, [4, 3, 2])

    widths = sqlite_client.get(f"/api/experiments/{experiment_id}/figures/widths").json()

    assert [trace["name"] for trace in widths["data"]] == ["stem"]  # the group, not each producer
    assert widths["data"][0]["y"] == [3, 2, 2]
    index = sqlite_client.get(f"/api/experiments/{experiment_id}/figures").json()
    assert index["layers"] == ["stem"]
    criterion = sqlite_client.get(f"/api/experiments/{experiment_id}/figures/criterion?layer=stem&cycle=0")
    assert criterion.status_code == 200, criterion.text
    assert "stem" in criterion.json()["layout"]["title"]["text"]
    compared = sqlite_client.get(f"/api/compare/figures/widths?ids={experiment_id}").json()
    assert [trace["name"] for trace in compared["data"]] == [f"residual (#{experiment_id}) · stem"]
    removed = [trace for trace in criterion.json()["data"] if trace["name"].startswith("removed")]
    assert removed[0]["name"] == "removed (1)"  # cycle 0 removed one of the group's four channels
    assert removed[-1]["y"] == [0]  # the channel the cycle recorded as removed


@pytest.mark.parametrize("name", ["resnet-mini", "mobilenet-v2-mini"])
def test_the_graph_presets_are_listed_with_their_costs(sqlite_client: TestClient, name: str) -> None:
    listed = {item["name"]: item for item in sqlite_client.get("/api/presets").json()}

    cost = model_cost(preset(name))
    assert (listed[name]["cost"]["params"], listed[name]["cost"]["flops"]) == (cost.params, cost.flops)
    assert listed[name]["model"]["input_shape"] == [28, 28, 1]
