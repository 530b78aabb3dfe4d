"""Comparing experiments over HTTP: the table, the figures, the exports, the ids parameter, and what a
comparison reads from the database."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from backend.db import session_scope
from backend.models import TFLiteBenchmark

XSS = "<img src=x onerror=alert(1)>"


def _history(rows: Any, count: int, *, cycles: int = 3, epochs: int = 2) -> list[int]:
    """``count`` experiments, each with ``cycles`` cycles (layer statistics included) and epochs."""
    ids = []
    for position in range(count):
        experiment_id = rows.experiment(name=f"run {position}", final_cycle=cycles - 1)
        for index in range(cycles):
            units = 100 // (index + 1) + position
            rows.cycle(
                experiment_id,
                index,
                {"hidden": units, "out": 1},
                loss=0.1 + position / 100,
                layers={"hidden": units},
            )
            for epoch in range(epochs):
                rows.epoch(experiment_id, index, epoch, loss=0.4 / (epoch + 1))
        ids.append(experiment_id)
    return ids


def _ids(ids: list[int]) -> str:
    return ",".join(str(one) for one in ids)


def _figure(client: TestClient, name: str, ids: list[int], query: str = "") -> dict[str, Any]:
    response = client.get(f"/api/compare/figures/{name}?ids={_ids(ids)}{query}")
    assert response.status_code == 200, response.text
    figure: dict[str, Any] = response.json()
    return figure


# --------------------------------------------------------------------------------------------- table


def test_the_comparison_keeps_the_order_asked_for(client: TestClient, rows: Any) -> None:
    first, second, third = _history(rows, 3)

    comparison = client.get(f"/api/compare?ids={third},{first},{third}").json()

    assert comparison["ids"] == [third, first]
    assert [one["id"] for one in comparison["experiments"]] == [third, first]
    assert comparison["experiments"][0]["url"] == f"/api/experiments/{third}"
    assert comparison["table"]["columns"] == [f"run 2 (#{third})", f"run 0 (#{first})"]
    rows_by_label = {row["label"]: row["values"] for row in comparison["table"]["rows"]}
    assert rows_by_label["units · hidden"] == [35, 33]  # the final cycle trained 100 // 3 + position units
    assert rows_by_label["cycles"] == [3, 3]
    assert [cycle["index"] for cycle in comparison["cycles"][str(first)]] == [0, 1, 2]
    assert second not in comparison["ids"]


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        ("", "at least one"),
        ("1,,x", "'x' is not an experiment id"),
        ("0", "'0' is not an experiment id"),
        ("-3", "'-3' is not an experiment id"),
        (",".join(str(n) for n in range(1, 22)), "at most 20"),
    ],
)
def test_bad_ids_are_a_422_naming_the_parameter(sqlite_client: TestClient, ids: str, message: str) -> None:
    for path in ("/api/compare", "/api/compare/figures/widths", "/api/compare/export"):
        response = sqlite_client.get(f"{path}?ids={ids}")
        assert response.status_code == 422, (path, response.text)
        issue = response.json()["detail"][0]
        assert issue["loc"] == ["query", "ids"] and issue["field"] == "ids"
        assert message in issue["msg"]


def test_a_missing_experiment_is_a_404(client: TestClient, rows: Any) -> None:
    (experiment_id,) = _history(rows, 1, cycles=1)

    response = client.get(f"/api/compare?ids={experiment_id},424242")

    assert response.status_code == 404
    assert "424242" in response.json()["detail"]
    assert client.get("/api/compare/figures/loss?ids=424242").status_code == 404


# --------------------------------------------------------------------------------------------- figures


def test_widths_draw_one_line_per_experiment_and_layer(client: TestClient, rows: Any) -> None:
    ids = _history(rows, 2)

    figure = _figure(client, "widths", ids)

    assert len(figure["data"]) == 2  # two experiments × hidden (the output layer cannot be pruned)
    hidden = [trace for trace in figure["data"] if trace["name"].endswith("· hidden")]
    assert [trace["y"] for trace in hidden] == [[50, 25, 16], [50, 25, 17]]  # widths_after per cycle
    assert figure["layout"]["uirevision"] == f"compare:widths:{_ids(ids)}"


def test_pareto_against_flops_draws_the_front_last(client: TestClient, rows: Any) -> None:
    ids = _history(rows, 2)

    every = _figure(client, "pareto-flops", ids)
    final = _figure(client, "pareto-flops", ids, "&final_only=true&log=true")

    assert every["data"][-1]["name"] == "Pareto front"
    assert sum(len(trace["x"]) for trace in every["data"][:-1]) == 6
    assert sum(len(trace["x"]) for trace in final["data"][:-1]) == 2
    assert final["layout"]["xaxis"]["type"] == "log"


def test_pareto_against_latency_waits_for_tflite_rows(app: FastAPI, client: TestClient, rows: Any) -> None:
    ids = _history(rows, 2)
    assert _figure(client, "pareto-latency", ids)["data"] == []

    with session_scope(app.state.context.session_factory) as session:
        for position, experiment_id in enumerate(ids):
            session.add(
                TFLiteBenchmark(
                    experiment_id=experiment_id,
                    cycle_index=2,
                    format="float32",
                    status="ok",
                    latency_median_us=100.0 + position,
                )
            )
    figure = _figure(client, "pareto-latency", ids)

    assert [trace["x"] for trace in figure["data"][:-1]] == [[100.0], [101.0]]
    assert "float32" in figure["layout"]["title"]["text"]


def test_loss_curves_cover_every_epoch_of_every_cycle(client: TestClient, rows: Any) -> None:
    ids = _history(rows, 2, cycles=3, epochs=2)

    figure = _figure(client, "loss", ids)

    assert len(figure["data"]) == 4  # validation and train per experiment
    assert all(trace["x"] == [1, 2, 3, 4, 5, 6] for trace in figure["data"])


def test_user_text_is_escaped_in_figures_and_plain_in_the_table(client: TestClient, rows: Any) -> None:
    experiment_id = rows.experiment(name=XSS)
    rows.cycle(experiment_id, 0)

    figure = _figure(client, "widths", [experiment_id])
    comparison = client.get(f"/api/compare?ids={experiment_id}").json()

    assert all("<img" not in trace["name"] and "&lt;img" in trace["name"] for trace in figure["data"])
    assert comparison["experiments"][0]["name"] == XSS
    assert comparison["table"]["columns"] == [f"{XSS} (#{experiment_id})"]


# --------------------------------------------------------------------------------------------- exports


def test_csv_export_is_a_download_with_formulas_defused(client: TestClient, rows: Any) -> None:
    experiment_id = rows.experiment(name="=HYPERLINK(1)")
    rows.cycle(experiment_id, 0, {"hidden": 8, "out": 1})

    response = client.get(f"/api/compare/export?ids={experiment_id}&format=csv")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith("attachment;")
    assert f"prunelab-compare-{experiment_id}.csv" in response.headers["content-disposition"]
    table = list(csv.reader(io.StringIO(response.text)))
    assert table[0] == ["", f"'=HYPERLINK(1) (#{experiment_id})"]
    assert ["units · hidden", "8"] in table


def test_json_export_is_the_comparison(client: TestClient, rows: Any) -> None:
    ids = _history(rows, 2, cycles=1)

    response = client.get(f"/api/compare/export?ids={_ids(ids)}&format=json")

    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-disposition"].endswith(".json")
    assert response.json() == client.get(f"/api/compare?ids={_ids(ids)}").json()
    assert client.get(f"/api/compare/export?ids={ids[0]}&format=xml").status_code == 422


# --------------------------------------------------------------------------------------------- reads


BLOBS = re.compile(r"layer_stats|artifacts|experiments\.spec|experiments\.notes|model_spec|layer_costs")


def test_a_comparison_reads_no_blobs_and_a_fixed_number_of_queries(
    app: FastAPI, client: TestClient, rows: Any, record_sql: Any
) -> None:
    ids = _history(rows, 6, cycles=2, epochs=1)

    counts = {}
    for size in (2, 6):
        for path in ("/api/compare", "/api/compare/figures/loss", "/api/compare/figures/pareto-latency"):
            with record_sql(app) as statements:
                assert client.get(f"{path}?ids={_ids(ids[:size])}").status_code == 200
            for statement in statements:
                assert not BLOBS.search(statement), (path, statement)
            counts[(path, size)] = len(statements)

    for path in ("/api/compare", "/api/compare/figures/loss", "/api/compare/figures/pareto-latency"):
        assert counts[(path, 2)] == counts[(path, 6)], path  # no query per experiment
