"""Stuck jobs over the API: re-queue records on experiments, and cancelling crossover runs (SQLite and
PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from backend.db import session_scope
from backend.models import CrossoverRun, utcnow


def crossover_row(rows: Any, **values: Any) -> int:
    with session_scope(rows.sessions) as session:
        run = CrossoverRun(
            rows=8,
            cols=4,
            batch=1,
            backends=["tensorflow"],
            densities=[1.0],
            runs=1,
            warmup=0,
            threads=1,
            block_rows=1,
            **values,
        )
        session.add(run)
        session.flush()
        return run.id


def test_experiments_say_whether_they_wait_for_a_worker_or_were_requeued(
    client: TestClient, rows: Any
) -> None:
    waiting = rows.experiment()
    requeued_at = utcnow() - timedelta(minutes=3)
    requeued = rows.experiment(requeues=2, requeued_at=requeued_at, last_loss="killed by signal 9 SIGKILL")

    listed = {item["id"]: item for item in client.get("/api/experiments").json()["items"]}
    detail = client.get(f"/api/experiments/{requeued}").json()

    assert (listed[waiting]["requeues"], listed[waiting]["requeued_at"]) == (0, None)
    assert listed[requeued]["requeues"] == 2 and listed[requeued]["requeued_at"] is not None
    assert (detail["requeues"], detail["last_loss"]) == (2, "killed by signal 9 SIGKILL")
    assert abs(_seconds(detail["requeued_at"]) - requeued_at.timestamp()) < 1


def _seconds(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_a_queued_crossover_is_cancelled_at_once(client: TestClient, rows: Any) -> None:
    run_id = crossover_row(rows)

    response = client.post(f"/api/crossover/{run_id}/cancel", json={})

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["cancel_requested"], body["finished_at"] is not None) == (
        "cancelled",
        True,
        True,
    )
    assert client.get(f"/api/crossover/{run_id}").json()["status"] == "cancelled"


def test_a_running_crossover_is_asked_to_stop(client: TestClient, rows: Any) -> None:
    run_id = crossover_row(rows, status="running", attempts=1, heartbeat_at=utcnow(), worker="w/1")

    first = client.post(f"/api/crossover/{run_id}/cancel", json={})
    again = client.post(f"/api/crossover/{run_id}/cancel", json={})

    assert first.status_code == again.status_code == 200
    body = again.json()
    assert (body["status"], body["cancel_requested"], body["attempts"]) == ("running", True, 1)
    assert body["heartbeat_at"] is not None


def test_cancelling_a_finished_or_unknown_crossover_is_409_or_404(client: TestClient, rows: Any) -> None:
    finished = crossover_row(rows, status="succeeded", finished_at=utcnow())

    conflict = client.post(f"/api/crossover/{finished}/cancel", json={})
    missing = client.post("/api/crossover/999999/cancel", json={})
    invalid = client.post("/api/crossover/0/cancel", json={})

    assert conflict.status_code == 409 and "already finished (succeeded)" in conflict.json()["detail"]
    assert missing.status_code == 404
    assert invalid.status_code == 422
    assert client.get(f"/api/crossover/{finished}").json()["status"] == "succeeded"
