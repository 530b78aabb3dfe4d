"""Health: 200 only when the database answers, is at head, and the broker pings; 503 with detail."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from servers import admin_app as create_app  # signed in as the test admin
from sqlalchemy import text

from backend.db import make_engine
from backend.migrate import UPGRADE_COMMAND, MigrationRequired
from backend.settings import Settings


class PingingQueue:
    """A queue double whose broker is reachable or not."""

    def __init__(self, reachable: bool = True):
        self.reachable = reachable

    def enqueue(self, experiment_id: int) -> None:
        raise AssertionError("the health check must not enqueue")

    def ping(self) -> bool:
        return self.reachable


def _health(settings: Settings, queue: Any, **options: Any) -> tuple[int, dict[str, Any]]:
    with TestClient(create_app(settings, queue, **options)) as client:
        response = client.get("/api/health")
    return response.status_code, response.json()


def test_all_checks_pass(settings: Settings) -> None:
    status, body = _health(settings, PingingQueue(reachable=True))

    assert status == 200
    assert body["status"] == "ok"
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "database": True,
        "migration": True,
        "broker": True,
    }


def test_an_unreachable_broker_is_503(sqlite_settings: Settings) -> None:
    status, body = _health(sqlite_settings, PingingQueue(reachable=False))

    assert status == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["broker"] == {"ok": False, "detail": "unreachable"}
    assert body["checks"]["database"]["ok"] is True


def test_a_database_behind_head_is_503(sqlite_settings: Settings) -> None:
    engine = make_engine(sqlite_settings)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0000'"))
    engine.dispose()

    status, body = _health(sqlite_settings, PingingQueue(), check_migrations=False)

    assert status == 503
    assert body["checks"]["migration"]["ok"] is False
    assert UPGRADE_COMMAND in body["checks"]["migration"]["detail"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_database_is_503(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database_url=f"postgresql+psycopg://nobody@127.0.0.1:{_closed_port()}/none",
        broker_url="memory://",
    )

    status, body = _health(settings, PingingQueue(), check_migrations=False)

    assert status == 503
    assert body["checks"]["database"]["ok"] is False
    assert "OperationalError" in body["checks"]["database"]["detail"]


def test_the_app_refuses_a_database_that_is_not_migrated(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, broker_url="memory://")

    with pytest.raises(MigrationRequired, match=UPGRADE_COMMAND):
        create_app(settings, PingingQueue())

    create_app(settings, PingingQueue(), check_migrations=False)  # explicitly allowed
