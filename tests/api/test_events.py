"""Live progress: the event feed (without HTTP) and the server-sent event stream (over a live server)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from backend.db import session_scope
from backend.models import Status
from backend.service.errors import InvalidInput
from backend.service.events import Cursor, Event, EventFeed


def _poll(app: FastAPI, feed: EventFeed) -> list[Event]:
    with session_scope(app.state.context.session_factory) as session:
        return feed.poll(session)


def _kinds(events: list[Event]) -> list[str]:
    return [event.kind for event in events]


# --------------------------------------------------------------------------------------------- feed


def test_the_feed_reports_status_then_rows_as_they_appear_then_ends(app: FastAPI, rows: Any) -> None:
    experiment_id = rows.experiment(status=Status.running.value)
    feed = EventFeed(experiment_id)

    first = _poll(app, feed)
    assert _kinds(first) == ["status"]
    assert first[0].data["status"] == "running" and first[0].id == "0.0"
    assert _poll(app, feed) == []

    rows.epoch(experiment_id, 0, 0, loss=0.4)
    rows.epoch(experiment_id, 0, 1, loss=0.3)
    epochs = _poll(app, feed)
    assert _kinds(epochs) == ["epoch", "epoch"]
    assert [event.data["epoch"] for event in epochs] == [0, 1]
    assert epochs[1].data["loss"] == pytest.approx(0.3)

    rows.cycle(experiment_id, 0)
    rows.update(experiment_id, cycles_done=1)
    cycle = _poll(app, feed)
    assert _kinds(cycle) == ["cycle", "status"]
    assert cycle[0].data["index"] == 0 and cycle[1].data["cycles_done"] == 1

    rows.update(experiment_id, progress_detail={"stage": "benchmarking", "benchmark_cycles": [0]})
    stage = _poll(app, feed)
    assert _kinds(stage) == ["status"] and stage[0].data["stage"] == "benchmarking"

    rows.epoch(experiment_id, 1, 0)
    rows.update(experiment_id, status=Status.succeeded.value)
    last = _poll(app, feed)
    assert _kinds(last) == ["epoch", "status", "end"]
    assert last[-1].data == {"id": experiment_id, "status": "succeeded"}
    assert feed.finished and _poll(app, feed) == []


def test_a_cursor_resumes_after_what_the_client_saw(app: FastAPI, rows: Any) -> None:
    experiment_id = rows.experiment(status=Status.running.value)
    for epoch in range(3):
        rows.epoch(experiment_id, 0, epoch)
    rows.cycle(experiment_id, 0)
    seen = _poll(app, EventFeed(experiment_id))
    second_epoch = seen[1]
    assert second_epoch.kind == "epoch" and second_epoch.data["epoch"] == 1

    resumed = _poll(app, EventFeed(experiment_id, Cursor.parse(second_epoch.id)))

    assert _kinds(resumed) == ["epoch", "cycle", "status"]
    assert resumed[0].data["epoch"] == 2
    assert resumed[-1].id == seen[-1].id


def test_a_deleted_experiment_ends_the_feed(app: FastAPI, rows: Any) -> None:
    experiment_id = rows.experiment(status=Status.succeeded.value)
    feed = EventFeed(experiment_id)
    with TestClient(app) as client:
        assert client.delete(f"/api/experiments/{experiment_id}").status_code == 204

    events = _poll(app, feed)

    assert _kinds(events) == ["end"] and events[0].data["reason"] == "deleted"


@pytest.mark.parametrize("token", ["abc", "1", "1.2.3", "-1.0", "1.x"])
def test_a_malformed_cursor_is_invalid_input(token: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        Cursor.parse(token, field=("header", "last-event-id"))
    assert caught.value.field == ("header", "last-event-id")


def test_cursor_round_trip() -> None:
    assert Cursor.parse(Cursor(12, 3).token()) == Cursor(12, 3)
    assert Cursor.parse(None) == Cursor.parse("") == Cursor()


def test_event_encoding_is_sse_with_json_data() -> None:
    event = Event("epoch", {"loss": float("nan"), "epoch": 2}, "5.1")

    assert event.encode() == 'id: 5.1\nevent: epoch\ndata: {"loss":null,"epoch":2}\n\n'


# --------------------------------------------------------------------------------------------- stream


def _parse(text: str) -> list[dict[str, Any]]:
    """SSE text → events (``id``, ``event``, ``data``); comments and ``retry`` are dropped."""
    events = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and line[0] != ":")
        if "event" in fields:
            events.append({"id": fields["id"], "event": fields["event"], "data": json.loads(fields["data"])})
    return events


def test_the_stream_of_a_finished_experiment_replays_and_ends(
    sqlite_client: TestClient, sqlite_rows: Any
) -> None:
    experiment_id = sqlite_rows.experiment(status=Status.failed.value, error="boom")
    sqlite_rows.epoch(experiment_id, 0, 0)

    response = sqlite_client.get(f"/api/experiments/{experiment_id}/events")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.text.startswith("retry: ")
    events = _parse(response.text)
    assert [event["event"] for event in events] == ["epoch", "status", "end"]
    assert events[1]["data"]["error"] == "boom"


def test_last_event_id_and_since_resume_the_stream(sqlite_client: TestClient, sqlite_rows: Any) -> None:
    experiment_id = sqlite_rows.experiment(status=Status.succeeded.value)
    for epoch in range(3):
        sqlite_rows.epoch(experiment_id, 0, epoch)
    url = f"/api/experiments/{experiment_id}/events"
    everything = _parse(sqlite_client.get(url).text)
    cursor = everything[0]["id"]

    by_header = _parse(sqlite_client.get(url, headers={"Last-Event-ID": cursor}).text)
    by_query = _parse(sqlite_client.get(url, params={"since": cursor}).text)

    assert [event["data"].get("epoch") for event in everything[:3]] == [0, 1, 2]
    for resumed in (by_header, by_query):
        assert [event["event"] for event in resumed] == ["epoch", "epoch", "status", "end"]
        assert [event["data"]["epoch"] for event in resumed[:2]] == [1, 2]


def test_a_malformed_last_event_id_replays_from_the_start(
    sqlite_client: TestClient, sqlite_rows: Any
) -> None:
    experiment_id = sqlite_rows.experiment(status=Status.succeeded.value)
    sqlite_rows.epoch(experiment_id, 0, 0)

    response = sqlite_client.get(
        f"/api/experiments/{experiment_id}/events", headers={"Last-Event-ID": "nope"}
    )

    assert response.status_code == 200
    assert [event["event"] for event in _parse(response.text)] == ["epoch", "status", "end"]


def test_a_malformed_since_is_422(sqlite_client: TestClient, sqlite_rows: Any) -> None:
    experiment_id = sqlite_rows.experiment()

    response = sqlite_client.get(f"/api/experiments/{experiment_id}/events", params={"since": "nope"})

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "since"]


def _stream(url: str) -> Iterator[tuple[float, dict[str, Any]]]:
    """(arrival time, event) for each event of a live stream."""
    with httpx.Client(timeout=10) as client, client.stream("GET", url) as response:
        assert response.status_code == 200
        block: list[str] = []
        for line in response.iter_lines():
            if line:
                block.append(line)
                continue
            parsed = _parse("\n".join(block))
            block = []
            for event in parsed:
                yield time.monotonic(), event


def test_a_live_stream_follows_the_worker_and_ends_when_it_finishes(
    app: FastAPI, rows: Any, serve: Any
) -> None:
    experiment_id = rows.experiment(status=Status.running.value)
    written: dict[str, float] = {}

    def worker() -> None:
        time.sleep(0.3)
        written["epoch"] = time.monotonic()
        rows.epoch(experiment_id, 0, 0)
        time.sleep(0.3)
        written["cycle"] = time.monotonic()
        rows.cycle(experiment_id, 0)
        time.sleep(0.3)
        written["status"] = time.monotonic()
        rows.update(experiment_id, status=Status.succeeded.value, cycles_done=1)

    received: list[tuple[float, dict[str, Any]]] = []
    with serve(app) as server:
        thread = threading.Thread(target=worker)
        thread.start()
        try:
            for arrival in _stream(f"{server.url}/api/experiments/{experiment_id}/events"):
                received.append(arrival)
        finally:
            thread.join()

    kinds = [event["event"] for _, event in received]
    assert kinds == ["status", "epoch", "cycle", "status", "end"]
    # each event left after the worker wrote it; how soon is not timed here (no timed assertions in
    # tests): the stream reads the database every event_poll_seconds (0.5 s by default)
    arrivals = {event["event"]: at for at, event in received[1:]}
    for kind in ("epoch", "cycle", "status"):
        assert arrivals[kind] >= written[kind], kind
    assert received[-1][1]["data"]["status"] == "succeeded"


def test_open_streams_do_not_starve_other_requests(sqlite_app: FastAPI, sqlite_rows: Any, serve: Any) -> None:
    """Many more open streams than the threadpool has threads (40), and the API still answers while they
    are all open (a stream holds a thread only while it polls, not while it waits for the next poll).

    Not timed: the streams stay open until the request has its answer (or for 20 s), so a server whose
    streams held its threads would time the request out (10 s) instead of answering. How fast it answers
    with 200 streams open is measured by benchmarks/sse_streams.py."""
    experiment_id = sqlite_rows.experiment(status=Status.running.value)
    streams = 100
    opened = threading.Barrier(streams + 1, timeout=20)
    stop = threading.Event()

    def follow(url: str) -> None:
        with httpx.Client(timeout=20) as client, client.stream("GET", url) as response:
            lines = response.iter_lines()
            while "event: status" not in next(lines):
                pass
            opened.wait()
            stop.wait(timeout=20)

    with serve(sqlite_app) as server:
        url = f"{server.url}/api/experiments/{experiment_id}/events"
        threads = [threading.Thread(target=follow, args=(url,), daemon=True) for _ in range(streams)]
        for thread in threads:
            thread.start()
        try:
            opened.wait()
            response = httpx.get(f"{server.url}/api/experiments/{experiment_id}", timeout=10)
            still_open = sum(thread.is_alive() for thread in threads)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=10)

    assert response.status_code == 200
    assert still_open == streams
