"""Event ids (cursors) are read strictly: only ``"<row id>.<row id>"`` as the server writes it, each
within the id columns. A bad ``Last-Event-ID`` (set by the browser) replays from the start; a bad ``since``
is 422."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from backend.models import Status
from backend.service.errors import InvalidInput
from backend.service.events import Cursor

NOT_CURSORS = [
    "99999999999.0",
    "0.99999999999",
    "2147483648.0",
    "1.0 ",
    " 1.0",
    "01.2",
    "1.02",
    "+1.2",
    "1.2.3",
    "\u0661.\u0662",  # Arabic-Indic digits: str.isdigit and \d accept them
    "1e3.0",
]


@pytest.mark.parametrize("token", NOT_CURSORS)
def test_a_cursor_the_server_never_writes_is_invalid(token: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        Cursor.parse(token)
    assert caught.value.field == ("query", "since")


@pytest.mark.parametrize("token", NOT_CURSORS)
def test_a_bad_last_event_id_resumes_from_the_start(token: str) -> None:
    assert Cursor.resume(token) == Cursor()


def test_a_good_last_event_id_resumes_where_it_says() -> None:
    assert Cursor.resume("2147483647.0") == Cursor(2**31 - 1, 0)
    assert Cursor.resume(Cursor(12, 3).token()) == Cursor(12, 3)
    assert Cursor.resume(None) == Cursor.resume("") == Cursor()


def _events(text: str) -> list[dict[str, Any]]:
    events = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and line[0] != ":")
        if "event" in fields:
            events.append({"event": fields["event"], "data": json.loads(fields["data"])})
    return events


@pytest.mark.parametrize("token", ["99999999999.0", "nope"])
def test_the_stream_replays_everything_after_a_bad_last_event_id(
    client: TestClient, rows: Any, token: str
) -> None:
    experiment_id = rows.experiment(status=Status.succeeded.value)
    for epoch in range(2):
        rows.epoch(experiment_id, 0, epoch)

    response = client.get(f"/api/experiments/{experiment_id}/events", headers={"Last-Event-ID": token})

    assert response.status_code == 200
    events = _events(response.text)
    assert [event["event"] for event in events] == ["epoch", "epoch", "status", "end"]


def test_a_since_beyond_the_id_columns_is_422(client: TestClient, rows: Any) -> None:
    experiment_id = rows.experiment(status=Status.succeeded.value)

    response = client.get(f"/api/experiments/{experiment_id}/events", params={"since": "99999999999.0"})

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "since"]
