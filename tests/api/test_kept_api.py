"""The kept model over HTTP: the figure index names the final and rejected cycles, the widths figure
leaves out the output layer, the listing sorts each metric in its own good direction and says when
the cycles stop."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update

from backend.db import session_scope
from backend.models import Cycle, Status


def _reject(app: FastAPI, experiment_id: int, index: int) -> None:
    with session_scope(app.state.context.session_factory) as session:
        session.execute(
            update(Cycle)
            .where(Cycle.experiment_id == experiment_id, Cycle.index == index)
            .values(accepted=False)
        )


def test_the_index_names_the_kept_cycle_and_every_rejected_one(
    client: TestClient, app: FastAPI, rows: Any
) -> None:
    # a back-off run (pruning.backoff): cycle 1 was rejected, cycle 2 was pruned again from cycle 0's
    # model and kept, cycle 3 was rejected with no retry left
    experiment_id = rows.experiment(status=Status.succeeded.value, stop_reason="tolerance")
    for index in range(4):
        rows.cycle(experiment_id, index)
    _reject(app, experiment_id, 1)
    _reject(app, experiment_id, 3)
    with session_scope(app.state.context.session_factory) as session:
        for index, source in ((1, 0), (2, 0), (3, 2)):
            session.execute(
                update(Cycle)
                .where(Cycle.experiment_id == experiment_id, Cycle.index == index)
                .values(pruned_from=source)
            )

    index = client.get(f"/api/experiments/{experiment_id}/figures").json()
    assert (index["final_cycle"], index["rejected"]) == (2, [1, 3])
    assert index["cycle_marks"] == {"1": "rejected", "2": "final (kept)", "3": "rejected"}
    detail = client.get(f"/api/experiments/{experiment_id}").json()
    assert [(c["accepted"], c["pruned_from"]) for c in detail["cycles"]] == [
        (True, None),
        (False, 0),
        (True, 0),
        (False, 2),
    ]
    cycles = client.get(f"/api/experiments/{experiment_id}/cycles").json()
    assert [c["pruned_from"] for c in cycles] == [None, 0, 0, 2]
    rows.update(experiment_id, final_cycle=0)  # a recorded final cycle wins
    assert client.get(f"/api/experiments/{experiment_id}/figures").json()["final_cycle"] == 0

    costs = client.get(f"/api/experiments/{experiment_id}/figures/costs").json()
    assert costs["data"][0]["marker"]["symbol"] == ["star", "x", "circle", "x"]
    assert costs["layout"]["xaxis"]["ticktext"] == [
        "0<br>final (kept)",
        "1<br>rejected",
        "2",
        "3<br>rejected",
    ]


def test_the_widths_figure_leaves_out_the_output_layer(client: TestClient, rows: Any) -> None:
    experiment_id = rows.experiment()
    rows.cycle(experiment_id, 0)  # widths {"hidden": 1000, "out": 1}; out cannot be pruned

    widths = client.get(f"/api/experiments/{experiment_id}/figures/widths").json()
    assert [trace["name"] for trace in widths["data"]] == ["hidden"]


def test_metric_vs_flops_is_one_of_the_experiment_figures(client: TestClient, rows: Any) -> None:
    experiment_id = rows.experiment()
    rows.cycle(experiment_id, 0, loss=0.3)
    rows.cycle(experiment_id, 1, loss=0.6)

    figure = client.get(f"/api/experiments/{experiment_id}/figures/metric-flops").json()
    assert figure["data"][0]["x"] == [20000, 10000]
    assert figure["data"][0]["y"] == pytest.approx([0.3 / 3, 0.6 / 3])  # validation metric = loss / 3


def _ids(client: TestClient, query: str) -> list[int]:
    response = client.get(f"/api/experiments?{query}")
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def test_metric_sorts_put_the_best_first_in_each_metrics_own_direction(client: TestClient, rows: Any) -> None:
    made = {
        "acc_low": rows.experiment(metric_name="accuracy", final_metric=0.6, best_metric=0.97),
        "rmse_low": rows.experiment(metric_name="rmse", final_metric=0.05, best_metric=0.05),
        "acc_high": rows.experiment(metric_name="accuracy", final_metric=0.95, best_metric=0.95),
        "rmse_high": rows.experiment(metric_name="rmse", final_metric=3.0, best_metric=0.01),
        "none": rows.experiment(),
    }

    def order(query: str) -> list[str]:
        names = {value: key for key, value in made.items()}
        return [names[i] for i in _ids(client, query)]

    assert order("sort=final_metric&order=desc") == ["acc_high", "acc_low", "rmse_low", "rmse_high", "none"]
    assert order("sort=final_metric&order=asc") == ["acc_low", "acc_high", "rmse_high", "rmse_low", "none"]
    assert order("sort=best_metric&order=desc") == ["acc_low", "acc_high", "rmse_high", "rmse_low", "none"]


def test_the_listing_says_when_the_cycles_stop(client: TestClient, rows: Any) -> None:
    experiment_id = rows.experiment(status=Status.running.value)  # SPEC: pruning.max_cycles 3

    (item,) = client.get("/api/experiments").json()["items"]
    assert (item["id"], item["max_cycles"]) == (experiment_id, 3)
    assert client.get(f"/api/experiments/{experiment_id}").json()["max_cycles"] == 3
