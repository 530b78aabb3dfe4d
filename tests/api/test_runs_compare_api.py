"""Comparing runs over HTTP: every setting side by side, the parallel-coordinates figure, the metric
chooser, accuracy in percent, the speed-up rows and the latency note."""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from backend.db import session_scope
from backend.figures.pareto import LATENCY_NOT_PAIRED
from backend.models import TFLiteBenchmark


def _spec(name: str, **pruning: Any) -> dict[str, Any]:
    return {
        "name": name,
        "model": {"preset": "sum-mlp"},
        "dataset": {"name": "sum", "train_samples": 1000},
        "pruning": {"criterion": {"type": "activation_count", "threshold": 0}, **pruning},
    }


def _history(rows: Any, specs: list[dict[str, Any]], metric: str = "rmse") -> list[int]:
    ids = []
    for spec in specs:
        experiment_id = rows.experiment(
            name=spec["name"], spec=spec, final_cycle=1, metric_name=metric, latency_speedup=1.5
        )
        for index in range(2):
            rows.cycle(experiment_id, index, {"hidden": 100 // (index + 1) + len(ids), "out": 1})
        ids.append(experiment_id)
    return ids


def test_settings_are_listed_side_by_side_with_differences_marked(client: TestClient, rows: Any) -> None:
    first, second = _history(rows, [_spec("a", max_cycles=5), _spec("b", max_cycles=9)])

    body = client.get(f"/api/compare/settings?ids={second},{first}").json()

    assert body["ids"] == [second, first]
    assert body["columns"] == [f"b (#{second})", f"a (#{first})"]
    by_setting = {row["setting"]: row for row in body["rows"]}
    assert by_setting["pruning.max_cycles"] == {
        "setting": "pruning.max_cycles",
        "values": [9, 5],
        "differs": True,
    }
    assert by_setting["model"] == {"setting": "model", "values": ["sum-mlp", "sum-mlp"], "differs": False}
    assert by_setting["dataset.train_samples"]["differs"] is False
    assert by_setting["name"]["differs"] is True


def test_settings_of_an_unknown_experiment_are_404(client: TestClient, rows: Any) -> None:
    (first,) = _history(rows, [_spec("a")])

    response = client.get(f"/api/compare/settings?ids={first},999999")

    assert response.status_code == 404


def test_parcoords_draws_the_differing_settings_then_the_outcomes(client: TestClient, rows: Any) -> None:
    ids = _history(rows, [_spec("a", max_cycles=5), _spec("b", max_cycles=9), _spec("c", max_cycles=7)])

    response = client.get(f"/api/compare/figures/parcoords?ids={','.join(map(str, ids))}")

    assert response.status_code == 200
    (trace,) = response.json()["data"]
    assert trace["type"] == "parcoords"
    labels = [dimension["label"] for dimension in trace["dimensions"]]
    assert labels == ["pruning.max_cycles", "final validation rmse", "final FLOPs", "final parameters"]
    assert trace["dimensions"][0]["values"] == [5, 9, 7]
    assert trace["dimensions"][2]["values"] == [20 * 50, 20 * 51, 20 * 52]
    assert trace["line"]["color"] == [0, 1, 2]


def test_the_table_has_speed_up_rows_in_csv_and_json(client: TestClient, rows: Any) -> None:
    ids = _history(rows, [_spec("a"), _spec("b")])
    query = ",".join(map(str, ids))

    table = client.get(f"/api/compare?ids={query}").json()["table"]
    exported = list(csv.reader(io.StringIO(client.get(f"/api/compare/export?ids={query}&format=csv").text)))

    values = {row["label"]: row["values"] for row in table["rows"]}
    assert values["speed-up, FLOPs (cycle 0 / final)"] == [100 / 50, 101 / 51]
    assert values["speed-up, TFLite latency (cycle 0 / final)"] == [1.5, 1.5]
    assert ["speed-up, FLOPs (cycle 0 / final)", "2.0", repr(101 / 51)] in exported


def test_pareto_compares_on_the_chosen_metric_and_shows_accuracy_in_percent(
    client: TestClient, rows: Any
) -> None:
    rmse = _history(rows, [_spec("r")], metric="rmse")
    accuracy = _history(rows, [_spec("a")], metric="accuracy")
    query = ",".join(map(str, rmse + accuracy))

    default = client.get(f"/api/compare/figures/pareto-flops?ids={query}").json()
    chosen = client.get(f"/api/compare/figures/pareto-flops?ids={query}&metric=accuracy").json()
    refused = client.get(f"/api/compare/figures/pareto-flops?ids={query}&metric=loss")

    assert [trace["name"] for trace in default["data"]][0] == f"r (#{rmse[0]})"
    assert [trace["name"] for trace in chosen["data"]][0] == f"a (#{accuracy[0]})"
    assert chosen["layout"]["yaxis"]["tickformat"] == ".1%"
    assert " %" in chosen["data"][0]["hovertext"][0]
    assert "left out (metric is not accuracy)" in chosen["layout"]["annotations"][-1]["text"]
    assert refused.status_code == 422 and refused.json()["detail"][0]["field"] == "metric"


def test_the_latency_view_says_latencies_are_not_paired(app: FastAPI, client: TestClient, rows: Any) -> None:
    ids = _history(rows, [_spec("a")])
    with session_scope(app.state.context.session_factory) as session:
        for index, latency in ((0, 200.0), (1, 100.0)):
            session.add(
                TFLiteBenchmark(
                    experiment_id=ids[0],
                    cycle_index=index,
                    format="float32",
                    status="ok",
                    latency_median_us=latency,
                )
            )

    figure = client.get(f"/api/compare/figures/pareto-latency?ids={ids[0]}").json()

    assert [len(trace["x"]) for trace in figure["data"]] == [2, 1]
    assert figure["layout"]["xaxis"]["title"]["text"] == (
        "median TFLite latency (µs) · absolute latencies of different runs are not paired"
    )
    assert LATENCY_NOT_PAIRED in figure["layout"]["xaxis"]["title"]["text"]
