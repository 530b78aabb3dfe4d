"""Event streams are capped in all and per client (429 with Retry-After before streaming), their slots
come back however a stream ends, and idle streams share one database read per interval."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from servers import admin_app as create_app  # signed in as the test admin

from backend.api.stream_slots import StreamSlots
from backend.db import session_scope
from backend.models import EpochRow, Status
from backend.service.events import BATCH
from backend.settings import Settings
from tests.api.conftest import RowFactory


def _app(settings: Settings, queue: Any, **limits: Any) -> FastAPI:
    return create_app(settings.model_copy(update=limits), queue, event_poll_seconds=0.05)


@contextmanager
def _open_stream(url: str) -> Iterator[httpx.Response]:
    """A stream whose headers (and, when accepted, first event) arrived; closed when the block ends."""
    with httpx.Client(timeout=10) as client, client.stream("GET", url) as response:
        lines = response.iter_lines()  # kept: closing it would close the connection
        if response.status_code == 200:
            next(lines)  # the retry line: the stream's generator runs
        else:
            response.read()
        yield response


@contextmanager
def _open_streams(server_url: str, experiment_id: int, count: int) -> Iterator[None]:
    """``count`` open streams of one experiment, closed when the block ends."""
    with ExitStack() as streams:
        for _ in range(count):
            streams.enter_context(_open_stream(f"{server_url}/api/experiments/{experiment_id}/events"))
        yield


def _open_slots(app: FastAPI) -> int:
    slots: StreamSlots | None = getattr(app.state, "stream_slots", None)
    return 0 if slots is None else slots.open


def _wait_for(condition: Callable[[], bool], seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture
def running(sqlite_settings: Settings, queue: Any) -> Callable[..., tuple[FastAPI, int]]:
    """An app with the given limits and one running experiment in it."""

    def make(**limits: Any) -> tuple[FastAPI, int]:
        app = _app(sqlite_settings, queue, **limits)
        return app, RowFactory(app.state.context.session_factory).experiment(status=Status.running.value)

    return make


def test_a_client_over_its_stream_limit_gets_429_with_retry_after_and_a_slot_frees_when_one_closes(
    running: Callable[..., tuple[FastAPI, int]],
    serve: Callable[[FastAPI], AbstractContextManager[Any]],
) -> None:
    app, experiment_id = running(max_streams_per_client=2)
    with serve(app) as server, ExitStack() as streams:
        url = f"{server.url}/api/experiments/{experiment_id}/events"
        first = streams.enter_context(_open_stream(url))
        second_stack = ExitStack()
        second = second_stack.enter_context(_open_stream(url))
        with _open_stream(url) as refused:
            third = (refused.status_code, refused.headers.get("retry-after"), refused.json())
        assert (first.status_code, second.status_code) == (200, 200)
        assert _open_slots(app) == 2
        second_stack.close()
        assert _wait_for(lambda: _open_slots(app) == 1)
        with _open_stream(url) as again:
            assert again.status_code == 200

    assert third[0] == 429 and third[1] == "10"
    assert third[2]["code"] == "too_many_streams"
    assert "PRUNELAB_MAX_STREAMS_PER_CLIENT=2" in third[2]["detail"]


def test_the_server_wide_stream_limit_refuses_further_streams(
    running: Callable[..., tuple[FastAPI, int]],
    serve: Callable[[FastAPI], AbstractContextManager[Any]],
) -> None:
    app, experiment_id = running(max_streams=1)
    with serve(app) as server:
        url = f"{server.url}/api/experiments/{experiment_id}/events"
        with _open_stream(url) as first, _open_stream(url) as second:
            statuses = (first.status_code, second.status_code)
            detail = second.json()["detail"]

    assert statuses == (200, 429)
    assert "(PRUNELAB_MAX_STREAMS)" in detail


def test_slots_come_back_when_clients_disconnect_and_when_experiments_finish(
    running: Callable[..., tuple[FastAPI, int]],
    serve: Callable[[FastAPI], AbstractContextManager[Any]],
) -> None:
    app, experiment_id = running()
    rows = RowFactory(app.state.context.session_factory)
    with serve(app) as server:
        url = f"{server.url}/api/experiments/{experiment_id}/events"
        with ExitStack() as streams:
            for _ in range(5):
                streams.enter_context(_open_stream(url))
            assert _open_slots(app) == 5
        assert _wait_for(lambda: _open_slots(app) == 0)

        ended: list[str] = []

        def follow() -> None:
            with httpx.Client(timeout=10) as client, client.stream("GET", url) as response:
                ended.extend(line for line in response.iter_lines() if line.startswith("event: end"))

        followers = [threading.Thread(target=follow) for _ in range(3)]
        for thread in followers:
            thread.start()
        assert _wait_for(lambda: _open_slots(app) == 3)
        rows.update(experiment_id, status=Status.succeeded.value)
        for thread in followers:
            thread.join(timeout=10)
        assert _wait_for(lambda: _open_slots(app) == 0)

    assert ended == ["event: end"] * 3


def test_idle_streams_share_one_database_read_per_interval(
    running: Callable[..., tuple[FastAPI, int]],
    serve: Callable[[FastAPI], AbstractContextManager[Any]],
    record_sql: Callable[[FastAPI], AbstractContextManager[list[str]]],
) -> None:
    app, experiment_id = running()
    with serve(app) as server, _open_streams(server.url, experiment_id, 20):
        watch = app.state.change_watch
        start = watch.reads
        assert _wait_for(lambda: watch.reads >= start + 2)  # every stream has had its first feed read
        with record_sql(app) as statements:
            assert _wait_for(lambda: watch.reads >= start + 12)  # ten more intervals of 0.05 s
        reads = watch.reads - start - 2

    feed_reads = [
        statement for statement in statements if "from epochs" in statement and "max(" not in statement
    ]
    # before: every stream read its feed every interval (20 streams × ~10 intervals ≈ 200 reads)
    assert len(feed_reads) <= 20
    assert reads >= 10


def test_streams_at_the_same_position_share_one_feed_read_per_change(
    running: Callable[..., tuple[FastAPI, int]],
    serve: Callable[[FastAPI], AbstractContextManager[Any]],
    record_sql: Callable[[FastAPI], AbstractContextManager[list[str]]],
) -> None:
    app, experiment_id = running()
    rows = RowFactory(app.state.context.session_factory)
    with serve(app) as server, _open_streams(server.url, experiment_id, 20):
        watch = app.state.change_watch
        start = watch.reads
        assert _wait_for(lambda: watch.reads >= start + 3)  # every stream is caught up and idle
        with record_sql(app) as statements:
            rows.epoch(experiment_id, 0, 0)
            now = watch.reads
            assert _wait_for(lambda: watch.reads >= now + 4)  # the change seen, read, and settled

    feed_reads = [s for s in statements if "from epochs" in s and "max(" not in s]
    # before: each of the 20 streams read the feed for the new epoch (and once more to see it caught up)
    assert 1 <= len(feed_reads) <= 4


def test_a_stream_catches_up_over_several_reads_without_any_change(
    running: Callable[..., tuple[FastAPI, int]],
) -> None:
    app, experiment_id = running()
    with session_scope(app.state.context.session_factory) as session:
        epochs = 2 * BATCH + 7
        session.add_all(
            EpochRow(experiment_id=experiment_id, cycle=0, epoch=epoch, loss=0.5, seconds=0.1)
            for epoch in range(epochs)
        )
    RowFactory(app.state.context.session_factory).update(experiment_id, status=Status.succeeded.value)

    with TestClient(app) as client:
        text = client.get(f"/api/experiments/{experiment_id}/events").text

    assert text.count("event: epoch") == epochs
    assert text.count("event: end") == 1
