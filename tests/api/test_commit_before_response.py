"""A change is committed before its response leaves the server.

A client that acts on a 200/201/303 at once (signs in, then reads /api/me; edits tags, then lists) must find
the change: the request's session commits when the route returns, not after the response is sent.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from backend.db import session_scope
from backend.models import Experiment, WebSession
from tests.api.conftest import RowFactory
from tests.servers import admin_token


class SeeAtResponseStart:
    """ASGI middleware: when the response starts, runs ``probe`` (in a fresh session) and keeps its result."""

    def __init__(self, app: FastAPI, probe: Any):
        self.app = app
        self.probe = probe
        self.seen: list[Any] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def watched(message: Any) -> None:
            if message["type"] == "http.response.start" and scope.get("method") in ("PATCH", "POST"):
                self.seen.append(self.probe())
            await send(message)

        await self.app(scope, receive, watched)


def test_an_edit_is_committed_when_its_response_starts(app: FastAPI, rows: RowFactory) -> None:
    experiment = rows.experiment()
    sessions = app.state.context.session_factory

    def tags_in_database() -> list[str]:
        with session_scope(sessions) as session:
            query = select(Experiment.tags).where(Experiment.id == experiment)
            return list(session.execute(query).scalar_one())

    watcher = SeeAtResponseStart(app, tags_in_database)
    with TestClient(watcher) as client:  # type: ignore[arg-type]
        response = client.patch(f"/api/experiments/{experiment}", json={"tags": ["kept"]})
    assert response.status_code == 200, response.text
    assert watcher.seen == [["kept"]]


def test_a_sign_in_is_committed_when_its_response_starts(app: FastAPI) -> None:
    sessions = app.state.context.session_factory
    token = admin_token(app)

    def web_sessions() -> int:
        with session_scope(sessions) as session:
            return len(session.execute(select(WebSession.id)).all())

    before = web_sessions()
    watcher = SeeAtResponseStart(app, web_sessions)
    with TestClient(watcher) as client:  # type: ignore[arg-type]
        response = client.post("/api/signin", json={"token": token})
    assert response.status_code == 200, response.text
    assert watcher.seen == [before + 1]
