"""Criteria over the API: labels published where the dashboard reads them, and 422s for bad recipes."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from prunespec.criteria import LABELS


def test_openapi_titles_every_criterion_schema_with_its_label(sqlite_client: TestClient) -> None:
    response = sqlite_client.get("/openapi.json")
    assert response.status_code == 200
    found: dict[str, str] = {}
    # as frontend/js/criteria.js reads them
    for name, schema in response.json()["components"]["schemas"].items():
        kind = schema.get("properties", {}).get("type", {})
        kind = kind.get("const", kind.get("default"))
        if re.search(r"Criterion(-Input|-Output)?$", name) and isinstance(kind, str):
            found[kind] = schema["title"]
    assert found == LABELS
    assert found["bn_scale"] == "BN scale |γ| (Liu et al.)"


@pytest.mark.parametrize(
    ("pruning", "message"),
    [
        ({"criterion": "bn_scale"}, "batch_norm right after layer 'hidden'"),
        ({"rules": [{"layers": ["out"]}]}, "pruning.rules.0.layers: 'out' is not among the prunable layers"),
        ({"rules": [{"layers": ["hidden"]}, {"layers": ["hidden"]}]}, "'hidden' is in rule 0 and rule 1"),
    ],
)
def test_a_pruning_recipe_the_model_cannot_follow_is_a_422_naming_the_layer(
    sqlite_client: TestClient, pruning: dict[str, Any], message: str
) -> None:
    spec = {
        "name": "rules",
        "model": {
            "input_shape": [2],
            "layers": [
                {"type": "dense", "name": "hidden", "units": 8, "activation": "relu"},
                {"type": "dense", "name": "out", "units": 1},
            ],
        },
        "dataset": {"name": "sum"},
        "pruning": pruning,
    }
    response = sqlite_client.post("/api/specs/preview", json={"spec": spec})
    assert response.status_code == 422
    assert message in response.text


def test_a_target_outside_zero_to_one_is_a_422_naming_the_field(sqlite_client: TestClient) -> None:
    spec = {
        "name": "t",
        "model": "sum-mlp",
        "dataset": {"name": "sum"},
        "pruning": {"target": {"flops": 1.5}},
    }
    response = sqlite_client.post("/api/specs/preview", json={"spec": spec})
    assert response.status_code == 422
    assert ["body", "spec", "pruning", "target", "flops"] in [
        issue["loc"] for issue in response.json()["detail"]
    ]


def test_the_criterion_figure_of_a_layer_with_a_rule_draws_that_rules_criterion(
    sqlite_client: TestClient, sqlite_rows: Any
) -> None:
    spec = {
        "name": "ruled",
        "model": {"preset": "sum-mlp"},
        "dataset": {"name": "sum"},
        "pruning": {
            "criterion": "activation_count",
            "rules": [{"layers": ["hidden"], "criterion": {"type": "variance", "threshold": 0.5}}],
        },
    }
    experiment_id = sqlite_rows.experiment(status="running", spec=spec)
    sqlite_rows.cycle(experiment_id, 0, {"hidden": 8, "out": 1}, layers={"hidden": 8}, bins=6)
    response = sqlite_client.get(f"/api/experiments/{experiment_id}/figures/criterion?layer=hidden&cycle=0")
    assert response.status_code == 200, response.text
    layout = response.json()["layout"]
    assert layout["xaxis"]["title"]["text"].startswith("output variance")
    assert [shape["x0"] for shape in layout["shapes"]] == [0.5]
    index = sqlite_client.get(f"/api/experiments/{experiment_id}/figures").json()
    assert index["criterion"] == {"type": "activation_count", "threshold": 0}  # the default, as before


def test_the_criterion_figure_of_a_weight_criterion_plots_the_recorded_scores_and_their_threshold(
    sqlite_client: TestClient, sqlite_rows: Any
) -> None:
    spec = {
        "name": "filter-norms",
        "model": {"preset": "sum-mlp"},
        "dataset": {"name": "sum"},
        "pruning": {"criterion": {"type": "weight_norm", "threshold": 0.5}},
    }
    norms = [0.25, 2.0, 1.5, 0.5, 3.0, 1.0, 0.75, 1.0]
    recorded = sqlite_rows.experiment(status="succeeded", spec=spec)
    sqlite_rows.cycle(recorded, 0, {"hidden": 8, "out": 1}, layers={"hidden": 8}, scores={"hidden": norms})
    before = sqlite_rows.experiment(status="succeeded", spec=spec)  # recorded before scores were kept
    sqlite_rows.cycle(before, 0, {"hidden": 8, "out": 1}, layers={"hidden": 8})

    figure = sqlite_client.get(f"/api/experiments/{recorded}/figures/criterion?layer=hidden&cycle=0").json()
    layout = figure["layout"]
    assert layout["xaxis"]["title"]["text"].startswith("norm of the unit's incoming weights")
    assert [shape["x0"] for shape in layout["shapes"]] == [pytest.approx(0.5 * sum(norms) / len(norms))]
    points = {
        unit: value
        for trace in figure["data"]
        if trace["type"] == "scatter"
        for unit, value in zip(trace["y"], trace["x"], strict=True)
    }
    assert points == {unit: pytest.approx(value) for unit, value in enumerate(norms)}

    old = sqlite_client.get(f"/api/experiments/{before}/figures/criterion?layer=hidden&cycle=0").json()
    assert "weight_norm not recorded" in old["layout"]["xaxis"]["title"]["text"]
    assert old["layout"]["shapes"] == []
