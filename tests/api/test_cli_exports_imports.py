"""Export (``GET /api/experiments/{id}/export``) and import (``POST /api/experiments/import``) on SQLite
and PostgreSQL: the download's rows and name, and a local run joining the history through the worker's
recording functions."""

from __future__ import annotations

import base64
import copy
import csv
import io
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from prunespec.costs import model_cost
from prunespec.spec import ExperimentSpec
from tests.api.conftest import SPEC, RowFactory


def _experiment_with_cycles(rows: RowFactory) -> int:
    experiment_id = rows.experiment(status="succeeded", final_cycle=0, stop_reason="tolerance")
    rows.cycle(experiment_id, 0, {"hidden": 1000, "out": 1})
    rows.cycle(experiment_id, 1, {"hidden": 500, "out": 1})
    rows.update(experiment_id, final_cycle=0)
    rows.epoch(experiment_id, 0, 0, loss=0.5)
    rows.epoch(experiment_id, 0, 1, loss=0.25)
    rows.epoch(experiment_id, 1, 0, loss=0.125)
    return experiment_id


def _reject_cycle(rows: RowFactory, experiment_id: int, index: int, pruned_from: int | None = None) -> None:
    from sqlalchemy import update

    from backend.db import session_scope
    from backend.models import Cycle

    with session_scope(rows.sessions) as session:
        session.execute(
            update(Cycle)
            .where(Cycle.experiment_id == experiment_id, Cycle.index == index)
            .values(accepted=False, pruned_from=pruned_from)
        )


def test_cycles_csv_has_a_row_per_cycle_widths_as_columns_and_marks_rejected_and_final(
    client: TestClient, rows: RowFactory
) -> None:
    experiment_id = _experiment_with_cycles(rows)
    _reject_cycle(rows, experiment_id, 1, pruned_from=0)
    response = client.get(f"/api/experiments/{experiment_id}/export", params={"format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert f'filename="experiment-{experiment_id}-cycles.csv"' in response.headers["content-disposition"]
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["cycle"], r["status"], r["final"], r["pruned_from"]) for r in table] == [
        ("0", "kept", "yes", ""),
        ("1", "rejected", "", "0"),
    ]
    assert [(r["width_hidden"], r["width_out"], r["params"], r["flops"]) for r in table] == [
        ("1000", "1", "10000", "20000"),
        ("500", "1", "5000", "10000"),
    ]
    assert float(table[0]["val_loss"]) == pytest.approx(0.11) and table[0]["metric_name"] == "rmse"
    assert table[1]["removed_units"] == "250"


def test_epochs_csv_has_a_row_per_epoch(client: TestClient, rows: RowFactory) -> None:
    experiment_id = _experiment_with_cycles(rows)
    response = client.get(
        f"/api/experiments/{experiment_id}/export", params={"format": "csv", "what": "epochs"}
    )
    assert response.status_code == 200
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["cycle"], r["epoch"], r["loss"]) for r in table] == [
        ("0", "0", "0.5"),
        ("0", "1", "0.25"),
        ("1", "0", "0.125"),
    ]
    assert f"experiment-{experiment_id}-epochs.csv" in response.headers["content-disposition"]


def test_json_export_holds_spec_summary_cycles_and_epochs(client: TestClient, rows: RowFactory) -> None:
    experiment_id = _experiment_with_cycles(rows)
    response = client.get(f"/api/experiments/{experiment_id}/export")
    assert response.status_code == 200
    assert f'filename="experiment-{experiment_id}.json"' in response.headers["content-disposition"]
    document = response.json()
    assert document["format"] == "prunelab-export/1"
    assert (
        document["experiment"]["id"] == experiment_id and document["experiment"]["stop_reason"] == "tolerance"
    )
    assert document["spec"]["name"] == SPEC["name"] and document["final_cycle"] == 0
    assert [c["index"] for c in document["cycles"]] == [0, 1] and "layer_costs" in document["cycles"][0]
    assert [(e["cycle"], e["epoch"]) for e in document["epochs"]] == [(0, 0), (0, 1), (1, 0)]


@pytest.mark.parametrize(
    ("params", "field"),
    [({"format": "xml"}, "format"), ({"what": "layers"}, "what"), ({"formatt": "csv"}, "formatt")],
)
def test_export_refuses_an_unknown_format_or_what_naming_it(
    client: TestClient, rows: RowFactory, params: dict[str, str], field: str
) -> None:
    experiment_id = rows.experiment()
    response = client.get(f"/api/experiments/{experiment_id}/export", params=params)
    assert response.status_code == 422
    assert field in [issue["field"] for issue in response.json()["detail"]]


def test_export_of_a_missing_experiment_is_404(client: TestClient) -> None:
    assert client.get("/api/experiments/999/export").status_code == 404


def test_csv_defuses_text_a_spreadsheet_would_run() -> None:
    from backend.service.exports import csv_text

    assert csv_text(["a", "b"], [["=1+1", -2.5]]) == "a,b\n'=1+1,-2.5\n"


# --------------------------------------------------------------------------------------------- import


#: The fewest fields a cycle of results.json needs.
SMALL_CYCLE = {"index": 0, "widths": {}, "widths_after": {}, "params": 0, "flops": 0, "metric_name": "rmse"}


def _results(widths: list[int], *, rejected_last: bool = False) -> dict[str, Any]:
    """A results.json as ``prunelab run`` writes it, for the sum-mlp preset."""
    spec = ExperimentSpec.model_validate(copy.deepcopy(SPEC)).model_dump(mode="json")
    cycles = []
    for index, hidden in enumerate(widths):
        after = widths[index + 1] if index + 1 < len(widths) else hidden
        cycles.append(
            {
                "index": index,
                "widths": {"hidden": hidden, "out": 1},
                "widths_after": {"hidden": after, "out": 1},
                "params": 1,  # wrong on purpose: the server computes costs from the widths
                "flops": 1,
                "layer_costs": [],
                "metric_name": "rmse",
                "loss": 0.1 * (index + 1),
                "metric": 0.2,
                "val_loss": 0.3,
                "val_metric": 0.01 * (index + 1),
                "removed": {"hidden": list(range(hidden - after))},
                "folded": {},
                "merged": {},
                "epochs": [
                    {
                        "cycle": index,
                        "epoch": e,
                        "epochs": 2,
                        "loss": 0.5 / (e + 1),
                        "metric": 0.1,
                        "val_loss": None,
                        "val_metric": None,
                        "seconds": 0.5,
                    }
                    for e in range(2)
                ],
                "train_seconds": 1.0,
                "stats_seconds": 0.1,
                "prune_seconds": 0.01,
                "accepted": not (rejected_last and index == len(widths) - 1),
                "stats": {
                    "hidden": {"outputs": 100, "apoz_mean": 0.5, "histogram": [1, 2], "bin_edges": [0, 1, 2]}
                },
            }
        )
    final = len(widths) - (2 if rejected_last else 1)
    return {
        "spec": spec,
        "versions": {"python": "3.11.9", "tensorflow": "2.21.0", "keras": "3.9.0"},
        "stop_reason": "tolerance" if rejected_last else "nothing_removed",
        "final_index": final,
        "cycles": cycles,
    }


def test_import_stores_a_succeeded_experiment_with_its_cycles_and_epochs(client: TestClient) -> None:
    body = {"results": _results([1000, 40, 12], rejected_last=True), "owner": "ana", "tags": ["laptop"]}
    response = client.post("/api/experiments/import", json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["status"] == "succeeded" and response.headers["location"] == created["url"]

    detail = client.get(created["url"]).json()
    assert detail["status"] == "succeeded" and detail["stop_reason"] == "tolerance"
    assert detail["owner"] == "test-admin" and detail["tags"] == ["laptop", "local-run"]
    progress_detail = {key: value for key, value in detail["progress_detail"].items() if value is not None}
    assert progress_detail == {"source": "local-run"} and detail["progress"] == 1.0
    assert detail["final_cycle"] == 1 and detail["cycles_done"] == 3
    assert detail["tf_version"] == "2.21.0" and detail["keras_version"] == "3.9.0"
    kept = ExperimentSpec.model_validate(copy.deepcopy(SPEC)).model.with_widths({"hidden": 40})
    assert (detail["final_params"], detail["final_flops"]) == (
        model_cost(kept).params,
        model_cost(kept).flops,
    )
    assert detail["final_widths"] == {"hidden": 40, "out": 1}
    assert detail["final_metric"] == pytest.approx(0.02)
    assert detail["best_metric"] == pytest.approx(0.01)  # rmse: lower is better
    assert [(c["index"], c["accepted"]) for c in detail["cycles"]] == [(0, True), (1, True), (2, False)]
    assert [c["pruned_from"] for c in detail["cycles"]] == [None, 0, 1]  # files without it: the cycle before
    epochs = client.get(f"{created['url']}/epochs").json()
    assert [(e["cycle"], e["epoch"]) for e in epochs] == [(c, e) for c in range(3) for e in range(2)]
    assert client.get(f"{created['url']}/artifacts").json() == []


def test_import_with_a_final_model_stores_it_as_the_result(client: TestClient) -> None:
    model = b"PK\x03\x04" + b"weights" * 10
    body = {"results": _results([1000, 40]), "final_model": base64.b64encode(model).decode()}
    created = client.post("/api/experiments/import", json=body).json()
    artifacts = client.get(f"{created['url']}/artifacts").json()
    assert sorted((a["kind"], a["cycle_index"]) for a in artifacts) == [("final", 1), ("trained", 1)]
    final = next(a for a in artifacts if a["kind"] == "final")
    assert client.get(final["url"]).content == model


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda r: r.update(cycles=[]), "results.cycles"),
        (lambda r: r.update(final_index=5), "results.final_index"),
        (lambda r: r["cycles"][1].update(index=7), "results.cycles.1.index"),
        (lambda r: r["cycles"][0]["widths"].update(nonexistent=3), "results.cycles.0.widths"),
        (lambda r: r["cycles"][1].update(pruned_from=1), "results.cycles.1.pruned_from"),
        (lambda r: r["cycles"][0].update(loss="NaN"), "results.cycles.0.loss"),
        (lambda r: r["spec"].update(name=""), "results.spec.name"),
        (lambda r: r.update(stop_reason="exploded"), "results.stop_reason"),
        (lambda r: r.update(cycles=[SMALL_CYCLE] * 1001), "results.cycles"),
    ],
)
def test_import_refuses_an_inconsistent_run_naming_the_field(
    client: TestClient, change: Any, field: str
) -> None:
    results = _results([1000, 40])
    change(results)
    response = client.post("/api/experiments/import", json={"results": results})
    assert response.status_code == 422, response.text
    assert field in [issue["field"] for issue in response.json()["detail"]], response.json()
    assert client.get("/api/experiments").json()["total"] == 0


def test_import_takes_a_new_experiments_bounds_on_tags_and_notes(client: TestClient) -> None:
    from backend.schemas import MAX_NOTES_CHARS, MAX_TAGS

    too_long = {"results": _results([1000]), "notes": "n" * (MAX_NOTES_CHARS + 1)}
    response = client.post("/api/experiments/import", json=too_long)
    assert response.status_code == 422, response.text
    assert [issue["field"] for issue in response.json()["detail"]] == ["notes"]
    # every import carries the tag local-run: the request leaves room for it
    for count in (MAX_TAGS + 1, MAX_TAGS):
        too_many = {"results": _results([1000]), "tags": [f"t{i}" for i in range(count)]}
        response = client.post("/api/experiments/import", json=too_many)
        assert response.status_code == 422, response.text
        assert [issue["field"] for issue in response.json()["detail"]] == ["tags"]
    assert client.get("/api/experiments").json()["total"] == 0
    # at the bounds: stored as given, local-run added (or kept where the caller named it)
    for tags in (
        [f"t{i}" for i in range(MAX_TAGS - 1)],
        [*(f"t{i}" for i in range(MAX_TAGS - 1)), "local-run"],
    ):
        at_bounds = {"results": _results([1000]), "notes": "n" * MAX_NOTES_CHARS, "tags": tags}
        created = client.post("/api/experiments/import", json=at_bounds)
        assert created.status_code == 201, created.text
        stored = client.get(f"/api/experiments/{created.json()['id']}").json()
        assert len(stored["notes"]) == MAX_NOTES_CHARS
        assert stored["tags"] == [*(f"t{i}" for i in range(MAX_TAGS - 1)), "local-run"]


@pytest.mark.parametrize(
    ("model", "words"), [("not base64!", "base64"), (base64.b64encode(b"hello").decode(), ".keras")]
)
def test_import_refuses_a_final_model_that_is_not_a_keras_file(
    client: TestClient, model: str, words: str
) -> None:
    response = client.post(
        "/api/experiments/import", json={"results": _results([1000]), "final_model": model}
    )
    assert response.status_code == 422
    issue = response.json()["detail"][0]
    assert issue["field"] == "final_model" and words in issue["msg"]


def test_imported_run_exports_like_any_other(client: TestClient) -> None:
    created = client.post("/api/experiments/import", json={"results": _results([1000, 40])}).json()
    text = client.get(f"{created['url']}/export", params={"format": "csv"}).text
    table = list(csv.DictReader(io.StringIO(text)))
    assert [(r["width_hidden"], r["final"]) for r in table] == [("1000", ""), ("40", "yes")]
    assert json.loads(client.get(f"{created['url']}/export").text)["experiment"]["status"] == "succeeded"
