"""Failures tell the caller which part failed, never the server's hosts, ports, users or paths; those go
to the server log (issue 12, "error messages disclose absolute paths, host names and pids")."""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from servers import admin_app as create_app  # signed in as the test admin

from backend.queue import CeleryQueue
from backend.settings import Settings


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_database_is_named_without_its_address(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = _closed_port()
    settings = Settings(
        data_dir=tmp_path,
        database_url=f"postgresql+psycopg://secretuser@127.0.0.1:{port}/secretdb",
        broker_url="memory://",
    )

    with caplog.at_level(logging.WARNING), TestClient(create_app(settings, check_migrations=False)) as client:
        response = client.get("/api/health")

    assert response.status_code == 503
    for name in ("database", "migration"):
        detail = response.json()["checks"][name]["detail"]
        assert detail == "OperationalError (details in the server log)"
    for secret in ("127.0.0.1", str(port), "secretuser", "secretdb", str(tmp_path)):
        assert secret not in response.text
    assert str(port) in caplog.text  # the operator still learns where it failed


def test_an_unreachable_broker_is_reported_without_its_address(
    sqlite_settings: Settings, sqlite_rows: Any, spec: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    port = _closed_port()
    settings = sqlite_settings.model_copy(update={"broker_url": f"redis://127.0.0.1:{port}/0"})
    finished = sqlite_rows.experiment(status="succeeded")

    with caplog.at_level(logging.WARNING), TestClient(create_app(settings, CeleryQueue(settings))) as client:
        created = client.post("/api/experiments", json={"spec": spec})
        benchmarks = client.post(f"/api/experiments/{finished}/benchmarks", json={})
        crossover = client.post("/api/crossover", json={"rows": 8, "cols": 8, "runs": 1})
        stored = client.get("/api/experiments/2").json()

    for response in (created, benchmarks, crossover):
        assert response.status_code == 503, response.text
        assert response.json()["code"] == "queue_unavailable"
        assert "the broker did not accept the message" in response.json()["detail"]
        assert "127.0.0.1" not in response.text and str(port) not in response.text
    assert stored["status"] == "failed" and "127.0.0.1" not in stored["error"]
    assert str(port) in caplog.text
