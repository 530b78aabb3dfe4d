"""One experiment's figures over HTTP: the index, every figure, the architecture diff, the TFLite table,
and what they read from the database."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from backend.db import session_scope
from backend.models import TFLiteBenchmark

FIGURES = ("widths", "costs", "metric-flops", "training", "activations", "criterion", "tflite", "speedup")


def _figure(client: TestClient, experiment_id: int, name: str, query: str = "") -> dict[str, Any]:
    response = client.get(f"/api/experiments/{experiment_id}/figures/{name}{query}")
    assert response.status_code == 200, response.text
    figure: dict[str, Any] = response.json()
    assert set(figure) == {"data", "layout"}
    return figure


def _tflite(app: FastAPI, experiment_id: int, cycle_index: int, fmt: str, latency: float | None) -> None:
    with session_scope(app.state.context.session_factory) as session:
        session.add(
            TFLiteBenchmark(
                experiment_id=experiment_id,
                cycle_index=cycle_index,
                format=fmt,
                status="ok" if latency is not None else "failed",
                error=None if latency is not None else "converter refused",
                model_bytes=4096 if latency is not None else None,
                latency_median_us=latency,
                latency_p90_us=None if latency is None else latency * 1.2,
                keras_metric=0.9,
                tflite_metric=0.89,
            )
        )


@pytest.fixture
def trimmed(rows: Any) -> int:
    """An experiment (activation-count criterion) with three cycles of statistics for ``hidden``."""
    experiment_id = rows.experiment(status="running")
    for index, units in enumerate((40, 20, 10)):
        rows.cycle(experiment_id, index, {"hidden": units, "out": 1}, layers={"hidden": units}, bins=6)
        for epoch in range(2):
            rows.epoch(experiment_id, index, epoch, loss=0.5 / (index + epoch + 1))
    return experiment_id


# --------------------------------------------------------------------------------------------- index


def test_the_index_lists_cycles_measured_layers_and_the_criterion(client: TestClient, trimmed: int) -> None:
    index = client.get(f"/api/experiments/{trimmed}/figures").json()

    assert index["figures"] == list(FIGURES)
    assert index["cycles"] == [0, 1, 2]
    assert index["layers"] == ["hidden"]
    assert index["criterion"] == {"type": "activation_count", "threshold": 0}
    assert index["tflite_rows"] == 0


def test_unknown_experiments_figures_and_parameters_are_refused(client: TestClient, trimmed: int) -> None:
    assert client.get("/api/experiments/999/figures").status_code == 404
    assert client.get("/api/experiments/999/figures/widths").status_code == 404
    bad_name = client.get(f"/api/experiments/{trimmed}/figures/pie")
    assert bad_name.status_code == 422
    assert bad_name.json()["detail"][0]["loc"] == ["path", "name"]
    bad_stage = client.get(f"/api/experiments/{trimmed}/figures/widths?stage=sideways")
    assert bad_stage.status_code == 422 and bad_stage.json()["detail"][0]["field"] == "stage"


# --------------------------------------------------------------------------------------------- figures


def test_every_figure_is_plotly_json_with_a_stable_uirevision(client: TestClient, trimmed: int) -> None:
    for name in FIGURES:
        first = _figure(client, trimmed, name)
        again = _figure(client, trimmed, name)
        assert first["layout"]["uirevision"] == again["layout"]["uirevision"], name
        assert str(trimmed) in str(first["layout"]["uirevision"]), name


def test_widths_are_one_bar_trace_per_layer_over_cycles(client: TestClient, trimmed: int) -> None:
    grouped = _figure(client, trimmed, "widths")
    stacked = _figure(client, trimmed, "widths", "?stacked=true&stage=before")

    hidden = next(trace for trace in grouped["data"] if trace["name"] == "hidden")
    assert hidden["x"] == [0, 1, 2] and hidden["y"] == [20, 10, 5]  # kept after pruning
    assert grouped["layout"]["barmode"] == "group"
    assert stacked["layout"]["barmode"] == "stack"
    assert next(t for t in stacked["data"] if t["name"] == "hidden")["y"] == [40, 20, 10]  # trained


def test_costs_follow_the_cycles_and_normalise_on_request(client: TestClient, trimmed: int) -> None:
    absolute = _figure(client, trimmed, "costs")
    percent = _figure(client, trimmed, "costs", "?normalise=true")

    assert absolute["data"][0]["y"] == [400, 200, 100]
    assert percent["data"][0]["y"] == [100.0, 50.0, 25.0]


def test_training_grows_as_epochs_are_recorded(client: TestClient, rows: Any, trimmed: int) -> None:
    before = _figure(client, trimmed, "training")
    rows.epoch(trimmed, 3, 0, loss=0.01)
    after = _figure(client, trimmed, "training")

    assert len(before["data"][0]["x"]) == 6
    assert len(after["data"][0]["x"]) == 7
    assert after["layout"]["uirevision"] == before["layout"]["uirevision"]
    assert len(after["layout"]["shapes"]) == 3  # boundaries between cycles 0|1, 1|2, 2|3


def test_activations_draw_one_row_per_cycle_of_the_chosen_layer(client: TestClient, trimmed: int) -> None:
    figure = _figure(client, trimmed, "activations", "?layer=hidden&log=true")

    assert [trace["y"] for trace in figure["data"]] == [[0], [1], [2]]
    assert all(len(trace["z"][0]) == 6 for trace in figure["data"])
    assert figure["layout"]["coloraxis"]["colorbar"]["title"]["text"].startswith("log")
    missing = client.get(f"/api/experiments/{trimmed}/figures/activations?layer=nope")
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]


def test_the_criterion_marks_the_units_the_cycle_removed(client: TestClient, trimmed: int) -> None:
    latest = _figure(client, trimmed, "criterion")
    first = _figure(client, trimmed, "criterion", "?layer=hidden&cycle=0")

    assert latest["layout"]["title"]["text"] == "Pruning criterion · layer hidden · cycle 2"
    names = [trace["name"] for trace in first["data"] if trace["type"] == "bar"]
    assert names == ["kept (20)", "removed (20)"]  # cycle 0 trained 40 units and removed 20
    assert first["layout"]["shapes"][0]["x0"] == 0  # activation count, threshold 0
    assert client.get(f"/api/experiments/{trimmed}/figures/criterion?cycle=9").status_code == 404


def test_an_experiment_without_cycles_gets_empty_figures_that_say_so(client: TestClient, rows: Any) -> None:
    experiment_id = rows.experiment()

    for name in FIGURES:
        figure = _figure(client, experiment_id, name)
        assert figure["data"] == [], name
        assert figure["layout"]["annotations"][0]["text"], name


def test_tflite_rows_feed_the_table_and_the_figures(app: FastAPI, client: TestClient, trimmed: int) -> None:
    assert client.get(f"/api/experiments/{trimmed}/benchmarks").json()["rows"] == []
    _tflite(app, trimmed, 2, "float32", 50.0)
    _tflite(app, trimmed, 0, "float32", 200.0)
    _tflite(app, trimmed, 0, "int8_full", None)

    table = client.get(f"/api/experiments/{trimmed}/benchmarks").json()["rows"]
    speedup = _figure(client, trimmed, "speedup")

    assert [(row["cycle_index"], row["format"], row["status"]) for row in table] == [
        (0, "float32", "ok"),
        (0, "int8_full", "failed"),
        (2, "float32", "ok"),
    ]
    assert table[1]["error"] == "converter refused" and table[1]["latency_median_us"] is None
    assert speedup["data"][0]["y"] == [1.0, 4.0]  # 200 µs → 50 µs
    assert client.get(f"/api/experiments/{trimmed}/figures").json()["tflite_rows"] == 3


# --------------------------------------------------------------------------------------------- diff


def test_the_architecture_diff_compares_two_cycles_layer_by_layer(client: TestClient, trimmed: int) -> None:
    between = client.get(f"/api/experiments/{trimmed}/architecture?before=0&after=2").json()
    own = client.get(f"/api/experiments/{trimmed}/architecture?before=1").json()

    hidden = next(layer for layer in between["layers"] if layer["name"] == "hidden")
    assert (hidden["width_before"], hidden["width_after"], hidden["units_removed"]) == (40, 10, 30)
    assert hidden["change"] == "pruned" and hidden["type"] == "dense"
    own_hidden = next(layer for layer in own["layers"] if layer["name"] == "hidden")
    assert (own["after"], own_hidden["width_before"], own_hidden["width_after"]) == (None, 20, 10)
    missing = client.get(f"/api/experiments/{trimmed}/architecture?before=0&after=7")
    assert missing.status_code == 404 and "7" in missing.json()["detail"]
    assert client.get(f"/api/experiments/{trimmed}/architecture").status_code == 422


# --------------------------------------------------------------------------------------------- reads


BLOBS = re.compile(r"layer_stats\.(active|zeros|mean|variance|minimum|maximum|unit_histograms)\b")


def test_figures_read_only_the_columns_they_draw(
    app: FastAPI, client: TestClient, trimmed: int, record_sql: Any
) -> None:
    for name in ("widths", "costs", "training", "activations", "tflite", "speedup"):
        with record_sql(app) as statements:
            _figure(client, trimmed, name)
        assert statements, name
        for statement in statements:
            assert not BLOBS.search(statement), (name, statement)
            assert "artifacts" not in statement and "model_spec" not in statement, (name, statement)

    with record_sql(app) as statements:
        _figure(client, trimmed, "criterion")
    blob_reads = {match for statement in statements for match in BLOBS.findall(statement)}
    assert blob_reads == {"active", "zeros", "variance"}
