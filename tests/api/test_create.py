"""Creating and rerunning experiments: row first (committed), then the queue; 202 with Location."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from servers import TEST_ADMIN
from sqlalchemy import create_engine, select

from backend.models import Experiment
from backend.settings import Settings
from prunespec.costs import model_cost
from prunespec.presets import preset


def test_create_saves_a_queued_experiment_and_enqueues_its_id(
    client: TestClient, queue: Any, spec: dict[str, Any]
) -> None:
    response = client.post(
        "/api/experiments", json={"spec": spec, "owner": "ada", "tags": ["sum", "trim", "sum"], "notes": "n"}
    )

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"
    assert body["url"] == f"/api/experiments/{body['id']}"
    assert response.headers["location"] == body["url"]
    assert queue.ids == [body["id"]]
    detail = client.get(body["url"]).json()
    # the owner is the signed-in caller (issue 15): the body's "ada" is ignored
    assert (detail["owner"], detail["tags"], detail["notes"]) == (TEST_ADMIN, ["sum", "trim"], "n")
    assert detail["status"] == "queued"


def test_create_stores_the_expanded_spec_and_initial_costs(client: TestClient, spec: dict[str, Any]) -> None:
    created = client.post("/api/experiments", json={"spec": spec}).json()

    detail = client.get(created["url"]).json()
    stored = detail["spec"]
    assert stored["model"] == preset("sum-mlp").model_dump(mode="json")
    assert stored["training"]["epochs"] == 2 and stored["training"]["batch_size"] == 128
    cost = model_cost(preset("sum-mlp"))
    assert (detail["initial_params"], detail["initial_flops"]) == (cost.params, cost.flops)
    assert detail["owner"] == TEST_ADMIN and detail["cycles"] == []


def test_the_row_is_committed_before_its_id_is_enqueued(
    app: FastAPI, settings: Settings, queue: Any, spec: dict[str, Any]
) -> None:
    other = create_engine(settings.database_url)  # a separate connection sees only committed rows
    seen: list[str | None] = []

    def check(experiment_id: int) -> None:
        with other.connect() as connection:
            seen.append(connection.scalar(select(Experiment.status).where(Experiment.id == experiment_id)))

    queue.on_enqueue = check
    try:
        with TestClient(app) as client:
            assert client.post("/api/experiments", json={"spec": spec}).status_code == 202
    finally:
        other.dispose()
    assert seen == ["queued"]


def test_a_queue_failure_is_503_and_the_experiment_is_kept_as_failed(
    client: TestClient, queue: Any, spec: dict[str, Any]
) -> None:
    queue.error = ConnectionError("broker down")

    response = client.post("/api/experiments", json={"spec": spec})

    assert response.status_code == 503
    assert response.json()["code"] == "queue_unavailable"
    assert "broker down" in response.json()["detail"]
    [item] = client.get("/api/experiments").json()["items"]
    assert item["status"] == "failed"
    assert "broker down" in client.get(item["url"]).json()["error"]


def test_rerun_creates_a_new_queued_experiment_with_the_same_spec(
    client: TestClient, queue: Any, spec: dict[str, Any]
) -> None:
    first = client.post("/api/experiments", json={"spec": spec, "owner": "ada", "tags": ["x"]}).json()
    client.post(f"{first['url']}/cancel", json={})

    response = client.post(f"{first['url']}/rerun", json={})

    assert response.status_code == 202
    second = response.json()
    assert second["id"] != first["id"] and second["status"] == "queued"
    assert response.headers["location"] == second["url"]
    assert queue.ids == [first["id"], second["id"]]
    original, copy = client.get(first["url"]).json(), client.get(second["url"]).json()
    assert copy["spec"] == original["spec"]
    assert (copy["owner"], copy["tags"]) == (TEST_ADMIN, ["x"])  # the caller reruns it
    assert original["status"] == "cancelled"


def test_rerun_of_an_unknown_experiment_is_404(client: TestClient, queue: Any) -> None:
    response = client.post("/api/experiments/4242/rerun", json={})

    assert response.status_code == 404
    assert response.json() == {"detail": "experiment 4242 does not exist", "code": "not_found"}
    assert queue.ids == []
