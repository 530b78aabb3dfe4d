"""Reading experiments: listing filters/sort/pages, one experiment, cycles, epochs, layer statistics."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from backend.models import Status


@pytest.fixture
def history(rows: Any) -> dict[str, int]:
    """Five experiments with different owners, tags, states and results (created in this order)."""
    return {
        "a": rows.experiment(
            name="Alpha 50%_x", owner="ada", tags=["mnist", "apoz"], metric_name="accuracy", final_metric=0.9
        ),
        "b": rows.experiment(name="beta", owner="bob", tags=["sum"], status=Status.running.value),
        "c": rows.experiment(
            name="ALPHA two", owner="ada", tags=["sum", "apoz"], metric_name="accuracy", final_metric=0.5
        ),
        "d": rows.experiment(
            name="delta",
            owner="cy",
            tags=[],
            status=Status.succeeded.value,
            metric_name="accuracy",
            final_metric=0.7,
        ),
        "e": rows.experiment(name="epsilon", owner="ada", tags=["apozz"], status=Status.failed.value),
    }


def _ids(client: TestClient, query: str) -> list[int]:
    response = client.get(f"/api/experiments?{query}")
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["e", "d", "c", "b", "a"]),
        ("status=queued", ["c", "a"]),
        ("status=running&status=failed", ["e", "b"]),
        ("owner=ada", ["e", "c", "a"]),
        ("tag=apoz", ["c", "a"]),
        ("tag=sum&owner=ada", ["c"]),
        ("q=alpha", ["c", "a"]),
        ("q=50%25_", ["a"]),
        ("q=%25", ["a"]),
        ("q=zeta", []),
        ("sort=name&order=asc", ["a", "c", "b", "d", "e"]),
        ("sort=final_metric&order=desc", ["a", "d", "c", "e", "b"]),
        ("sort=final_metric&order=asc", ["c", "d", "a", "b", "e"]),
        ("sort=status&order=asc", ["e", "a", "c", "b", "d"]),
    ],
)
def test_listing_filters_and_sorts(
    client: TestClient, history: dict[str, int], query: str, expected: list[str]
) -> None:
    assert _ids(client, query) == [history[key] for key in expected]


def test_listing_pages_and_counts_all_matches(client: TestClient, history: dict[str, int]) -> None:
    page = client.get("/api/experiments?sort=id&order=asc&limit=2&offset=1").json()

    assert [item["id"] for item in page["items"]] == [history["b"], history["c"]]
    assert (page["total"], page["limit"], page["offset"]) == (5, 2, 1)
    filtered = client.get("/api/experiments?owner=ada&limit=1").json()
    assert filtered["total"] == 3 and len(filtered["items"]) == 1
    assert client.get("/api/experiments?offset=10").json() == {
        "items": [],
        "total": 5,
        "limit": 50,
        "offset": 10,
    }


def test_listing_reads_only_the_experiments_summary_columns(
    app: FastAPI, client: TestClient, rows: Any, record_sql: Any
) -> None:
    experiment_id = rows.experiment(notes="long notes", final_widths={"hidden": 3})
    rows.cycle(experiment_id, 0, layers={"hidden": 16})

    with record_sql(app) as statements:
        page = client.get("/api/experiments").json()

    assert page["total"] == 1 and page["items"][0]["id"] == experiment_id
    assert page["items"][0]["final_widths"] == {"hidden": 3}  # the listing's widths column
    assert statements, "no SQL was recorded"
    for statement in statements:
        assert not re.search(r"\b(cycles|layer_stats|epochs)\b", statement), statement
        # of the spec, only the one number pruning.max_cycles, extracted by the database
        rest = re.sub(
            r"json_extract\(experiments\.spec, \?\)|experiments\.spec #>> %\(spec_1\)s", "", statement
        )
        assert "experiments.spec" not in rest and "experiments.notes" not in statement


def test_one_experiment_has_its_cycles_in_order_without_their_details(
    app: FastAPI, client: TestClient, rows: Any, record_sql: Any
) -> None:
    experiment_id = rows.experiment(status=Status.running.value, progress=0.5, cycles_done=2)
    rows.cycle(experiment_id, 1, {"hidden": 40, "out": 1}, layers={"hidden": 40})
    rows.cycle(experiment_id, 0, {"hidden": 100, "out": 1}, layers={"hidden": 100})

    with record_sql(app) as statements:
        detail = client.get(f"/api/experiments/{experiment_id}").json()

    assert detail["status"] == "running" and detail["progress"] == 0.5
    assert detail["spec"]["name"] == "sum-trim"
    assert [cycle["index"] for cycle in detail["cycles"]] == [0, 1]
    assert detail["cycles"][0]["widths"] == {"hidden": 100, "out": 1}
    assert detail["cycles"][0]["widths_after"] == {"hidden": 50, "out": 1}
    assert detail["cycles"][1]["params"] == 400
    assert "model_spec" not in detail["cycles"][0] and "removed" not in detail["cycles"][0]
    assert not any("layer_stats" in statement for statement in statements)
    cycle_reads = [s for s in statements if "from cycles" in s]
    assert cycle_reads and not any("model_spec" in s or "removed" in s for s in cycle_reads)


def test_timestamps_are_utc_and_non_finite_numbers_are_null(client: TestClient, rows: Any) -> None:
    experiment_id = rows.experiment(final_metric=math.inf)
    rows.cycle(experiment_id, 0, loss=-math.inf)

    detail = client.get(f"/api/experiments/{experiment_id}").json()

    assert detail["created_at"].endswith("Z")
    assert detail["final_metric"] is None
    assert detail["cycles"][0]["loss"] is None
    assert client.get(f"/api/experiments/{experiment_id}/cycles").json()[0]["loss"] is None


def test_cycles_in_full(client: TestClient, rows: Any) -> None:
    experiment_id = rows.experiment()
    rows.cycle(experiment_id, 0, {"hidden": 6, "out": 1})

    [cycle] = client.get(f"/api/experiments/{experiment_id}/cycles").json()

    assert cycle["removed"] == {"hidden": [0, 1, 2]}
    assert cycle["layer_costs"][0]["name"] == "hidden"
    assert (cycle["train_seconds"], cycle["metric_name"]) == (1.5, "rmse")
    assert client.get(f"/api/experiments/{rows.experiment()}/cycles").json() == []


def test_epochs_by_cycle(client: TestClient, rows: Any) -> None:
    experiment_id = rows.experiment()
    other = rows.experiment()
    for cycle, epoch in [(1, 0), (0, 1), (0, 0), (1, 1)]:
        rows.epoch(experiment_id, cycle, epoch, loss=cycle + epoch / 10)
    rows.epoch(other, 0, 0)

    epochs = client.get(f"/api/experiments/{experiment_id}/epochs").json()
    cycle_one = client.get(f"/api/experiments/{experiment_id}/epochs?cycle=1").json()

    assert [(e["cycle"], e["epoch"]) for e in epochs] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert epochs[1]["loss"] == pytest.approx(0.1) and epochs[1]["val_metric"] is None
    assert [(e["cycle"], e["epoch"]) for e in cycle_one] == [(1, 0), (1, 1)]


def test_layer_statistics_decode_the_per_unit_arrays(client: TestClient, rows: Any) -> None:
    experiment_id = rows.experiment()
    rows.cycle(experiment_id, 0, layers={"conv1": 5, "fc1": 300}, bins=4)

    response = client.get(f"/api/experiments/{experiment_id}/cycles/0/layers")

    assert response.status_code == 200
    body = response.json()
    assert (body["experiment_id"], body["cycle"]) == (experiment_id, 0)
    conv, fc = body["layers"]
    assert (conv["layer"], conv["units"], conv["outputs"]) == ("conv1", 5, 100)
    assert conv["zeros"] == [0, 1, 2, 3, 4]
    assert conv["active"] == [100, 99, 98, 97, 96]
    assert conv["apoz"] == pytest.approx([0.0, 0.01, 0.02, 0.03, 0.04])
    assert conv["mean"] == pytest.approx(np.linspace(0, 1, 5).tolist(), abs=1e-6)
    assert conv["variance"] == pytest.approx([0.25] * 5)
    assert (conv["minimum"], conv["maximum"]) == ([0.0] * 5, [1.0] * 5)
    assert len(conv["histogram"]) == 4 and len(conv["bin_edges"]) == 5
    assert conv["unit_histograms"] is None
    assert len(fc["apoz"]) == 300 and fc["apoz"][101] == pytest.approx(0.0)


def test_unit_histograms_only_when_asked_for(client: TestClient, rows: Any) -> None:
    experiment_id = rows.experiment()
    rows.cycle(experiment_id, 0, layers={"hidden": 3}, bins=6)

    layer = client.get(f"/api/experiments/{experiment_id}/cycles/0/layers?unit_histograms=true").json()
    [stats] = layer["layers"]

    assert np.asarray(stats["unit_histograms"]).shape == (3, 6)
    assert np.asarray(stats["unit_histograms"]).sum(axis=0).tolist() == stats["histogram"]


def test_layer_statistics_of_a_missing_cycle_are_404(client: TestClient, rows: Any) -> None:
    experiment_id = rows.experiment()
    rows.cycle(experiment_id, 0)

    response = client.get(f"/api/experiments/{experiment_id}/cycles/1/layers")

    assert response.status_code == 404
    assert response.json()["detail"] == f"cycle 1 of experiment {experiment_id} does not exist"
    assert client.get(f"/api/experiments/{experiment_id}/cycles/0/layers").json()["layers"] == []
