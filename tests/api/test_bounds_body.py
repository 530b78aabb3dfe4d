"""Request bodies are capped while they stream in: 413 with an ErrorBody naming the limit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient
from servers import admin_app as create_app  # signed in as the test admin
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Message, Receive, Scope, Send

from backend.api.body_limit import BodyLimit
from backend.settings import Settings

CHUNK = 64 * 1024


@pytest.fixture
def small_limit(sqlite_settings: Settings, queue: Any) -> Iterator[TestClient]:
    """The app with a 4 KiB body limit."""
    with TestClient(create_app(sqlite_settings.model_copy(update={"max_body_bytes": 4096}), queue)) as client:
        yield client


def _assert_too_large(response: Any, limit: str) -> None:
    assert response.status_code == 413, response.text
    assert response.json() == {
        "detail": f"the request body is over {limit} bytes, this server's limit (PRUNELAB_MAX_BODY_BYTES)",
        "code": "body_too_large",
    }


def test_a_declared_length_over_the_limit_is_refused(small_limit: TestClient, queue: Any) -> None:
    spec = {"name": "x" * 5000}

    _assert_too_large(small_limit.post("/api/experiments", json={"spec": spec}), "4,096")
    assert queue.ids == []


def test_a_chunked_body_over_the_limit_is_refused_while_it_streams(small_limit: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"text": "'
        for _ in range(10):
            yield b"a" * 1000
        yield b'"}'

    response = small_limit.post(
        "/api/specs/parse", content=chunks(), headers={"content-type": "application/json"}
    )

    _assert_too_large(response, "4,096")


def test_the_default_limit_is_one_mebibyte_and_smaller_bodies_pass(sqlite_client: TestClient) -> None:
    over = sqlite_client.post(
        "/api/specs/parse", content=b"a" * (1_048_576 + 1), headers={"content-type": "text/yaml"}
    )
    under = sqlite_client.post("/api/specs/preview", json={"spec": {"name": "x"}})

    _assert_too_large(over, "1,048,576")
    assert under.status_code == 422  # read whole and validated: the body was not cut


# --------------------------------------------------------------------------------------------- ASGI level


async def _read_all(scope: Scope, receive: Receive, send: Send) -> None:
    """An app that reads the whole body, then answers its length."""
    body = await Request(scope, receive).body()
    await JSONResponse({"bytes": len(body)})(scope, receive, send)


def _call(
    middleware: BodyLimit, path: str, headers: list[tuple[bytes, bytes]], chunks: int
) -> tuple[list[Message], int]:
    """Send ``chunks`` body chunks of 64 KiB; returns what was sent back and how many chunks were read."""
    read = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal read
        read += 1
        return {"type": "http.request", "body": b"x" * CHUNK, "more_body": read < chunks}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "headers": headers, "query_string": b""}
    anyio.run(middleware, scope, receive, send)
    return sent, read


def _status_and_body(sent: list[Message]) -> tuple[int, Any]:
    body = b"".join(message.get("body", b"") for message in sent if message["type"] == "http.response.body")
    return sent[0]["status"], json.loads(body)


def test_a_declared_length_over_the_limit_is_answered_before_any_body_is_read() -> None:
    declared = [(b"content-length", str(50 * 1024 * 1024).encode())]

    sent, read = _call(BodyLimit(_read_all, max_bytes=CHUNK), "/api/experiments", declared, chunks=800)

    assert read == 0
    assert _status_and_body(sent)[0] == 413


def test_reading_stops_at_the_chunk_that_crosses_the_limit() -> None:
    sent, read = _call(BodyLimit(_read_all, max_bytes=3 * CHUNK), "/api/experiments", [], chunks=800)

    assert read == 4
    status, body = _status_and_body(sent)
    assert status == 413 and body["code"] == "body_too_large"


def test_a_path_prefix_may_have_its_own_limit() -> None:
    middleware = BodyLimit(_read_all, max_bytes=CHUNK, limits_by_prefix={"/api/uploads": 10 * CHUNK})

    upload, _ = _call(middleware, "/api/uploads/model", [], chunks=8)
    other, _ = _call(middleware, "/api/experiments", [], chunks=8)

    assert _status_and_body(upload) == (200, {"bytes": 8 * CHUNK})
    assert _status_and_body(other)[0] == 413
    assert middleware.limit_for("/") == CHUNK
