"""Cancel and delete: conditional updates that stay correct against a worker's claim."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from backend.models import Artifact, Cycle, EpochRow, Experiment, LayerStatsRow, Status

#: How the worker claims an experiment (the statement the issue names).
CLAIM = text("UPDATE experiments SET status = 'running' WHERE id = :id AND status = 'queued'")


def _claim(app: FastAPI, experiment_id: int) -> int:
    with app.state.context.engine.begin() as connection:
        return int(connection.execute(CLAIM, {"id": experiment_id}).rowcount)


def test_cancelling_a_queued_experiment_finishes_it_and_the_worker_never_claims_it(
    app: FastAPI, client: TestClient, spec: dict[str, Any]
) -> None:
    created = client.post("/api/experiments", json={"spec": spec}).json()

    response = client.post(f"{created['url']}/cancel", json={})

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "cancelled" and body["stop_reason"] == "cancelled"
    assert body["finished_at"] is not None
    assert _claim(app, created["id"]) == 0
    assert client.get(created["url"]).json()["status"] == "cancelled"


def test_cancelling_a_running_experiment_asks_its_worker_to_stop(client: TestClient, rows: Any) -> None:
    experiment_id = rows.experiment(status=Status.running.value)

    first = client.post(f"/api/experiments/{experiment_id}/cancel", json={})
    again = client.post(f"/api/experiments/{experiment_id}/cancel", json={})

    for response in (first, again):
        assert response.status_code == 200
        assert (response.json()["status"], response.json()["cancel_requested"]) == ("running", True)


@pytest.mark.parametrize("status", [Status.succeeded, Status.failed, Status.cancelled])
def test_cancelling_a_finished_experiment_is_409(client: TestClient, rows: Any, status: Status) -> None:
    experiment_id = rows.experiment(status=status.value)

    response = client.post(f"/api/experiments/{experiment_id}/cancel", json={})

    assert response.status_code == 409
    assert response.json()["code"] == "conflict"
    assert f"already finished ({status.value})" in response.json()["detail"]
    assert client.get(f"/api/experiments/{experiment_id}").json()["cancel_requested"] is False


def _counts(app: FastAPI, experiment_id: int) -> dict[str, int]:
    with app.state.context.session_factory() as session:
        return {
            "experiments": session.scalar(select(func.count()).where(Experiment.id == experiment_id)) or 0,
            "cycles": session.scalar(select(func.count()).where(Cycle.experiment_id == experiment_id)) or 0,
            "epochs": session.scalar(select(func.count()).where(EpochRow.experiment_id == experiment_id))
            or 0,
            "layers": session.scalar(
                select(func.count())
                .select_from(LayerStatsRow)
                .join(Cycle)
                .where(Cycle.experiment_id == experiment_id)
            )
            or 0,
            "artifacts": session.scalar(select(func.count()).where(Artifact.experiment_id == experiment_id))
            or 0,
        }


def test_delete_removes_the_experiment_with_its_rows_and_artifacts(
    app: FastAPI, client: TestClient, rows: Any
) -> None:
    doomed = rows.experiment(status=Status.succeeded.value)
    kept = rows.experiment(status=Status.succeeded.value)
    for experiment_id in (doomed, kept):
        rows.epoch(experiment_id, 0, 0)
        rows.cycle(experiment_id, 0, layers={"hidden": 8})
        rows.artifact(experiment_id, b"model bytes")
    artifact_id = client.get(f"/api/experiments/{doomed}/artifacts").json()[0]["id"]

    response = client.delete(f"/api/experiments/{doomed}")

    assert response.status_code == 204 and response.content == b""
    assert _counts(app, doomed) == dict.fromkeys(
        ("experiments", "cycles", "epochs", "layers", "artifacts"), 0
    )
    assert _counts(app, kept) == {"experiments": 1, "cycles": 1, "epochs": 1, "layers": 1, "artifacts": 1}
    assert client.get(f"/api/experiments/{doomed}").status_code == 404
    assert client.get(f"/api/artifacts/{artifact_id}").status_code == 404


def test_deleting_a_queued_experiment_means_the_worker_never_claims_it(
    app: FastAPI, client: TestClient, spec: dict[str, Any]
) -> None:
    created = client.post("/api/experiments", json={"spec": spec}).json()

    assert client.delete(created["url"]).status_code == 204
    assert _claim(app, created["id"]) == 0


def test_deleting_a_running_experiment_is_409(app: FastAPI, client: TestClient, rows: Any) -> None:
    experiment_id = rows.experiment(status=Status.running.value)
    rows.cycle(experiment_id, 0)

    response = client.delete(f"/api/experiments/{experiment_id}")

    assert response.status_code == 409
    assert "cancel it first" in response.json()["detail"]
    assert _counts(app, experiment_id)["cycles"] == 1
