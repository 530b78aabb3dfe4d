"""Uploads (issue 16): hostile model and data files are refused with a 4xx naming the problem, the service
keeps serving, same bytes return the same id, and specs name uploads by id."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest
from fastapi.testclient import TestClient
from servers import RecordingQueue
from starlette.types import Message
from uploads_files import (
    keras_layer,
    keras_zip,
    npz_bytes,
    sequential_config,
    small_dense_keras,
    tiny_npz,
)

from backend.models import Upload
from backend.settings import Settings


def _post_model(client: TestClient, content: bytes, filename: str = "m.keras", **form: str) -> Any:
    return client.post("/api/models", files={"file": (filename, content)}, data=form)


def _post_data(client: TestClient, *files: tuple[str, bytes], **form: str) -> Any:
    return client.post("/api/datasets", files=[("file", f) for f in files], data=form)


def _problem(response: Any) -> str:
    body = response.json()
    detail = body["detail"]
    return detail if isinstance(detail, str) else " ".join(issue["msg"] for issue in detail)


def _still_serving(client: TestClient) -> None:
    assert client.get("/api/health").status_code == 200
    assert client.get("/api/models").status_code == 200


def _bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", "{}")
        archive.writestr("model.weights.h5", b"\x00" * (20 << 20))
    return buffer.getvalue()


def _traversal() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("config.json", "{}")
        archive.writestr("../../x", b"owned")
    return buffer.getvalue()


HOSTILE_MODELS = {
    "lambda": (
        keras_zip(sequential_config(keras_layer("Lambda", "sneaky", function={"class_name": "__lambda__"}))),
        ["sneaky", "Lambda"],
    ),
    "custom class": (
        keras_zip(
            sequential_config(
                {
                    **keras_layer("MyLayer", "mine", module="mypackage.layers"),
                    "registered_name": "Custom>MyLayer",
                }
            )
        ),
        ["mine", "outside Keras"],
    ),
    "module outside keras": (
        keras_zip(sequential_config(keras_layer("Dense", "dense_os", module="os", units=2))),
        ["dense_os", "'os'"],
    ),
    "registered name": (
        keras_zip(
            sequential_config({**keras_layer("Dense", "reg", units=2), "registered_name": "evil>Dense"})
        ),
        ["reg", "custom object"],
    ),
    "unknown keras layer": (
        keras_zip(sequential_config(keras_layer("TextVectorization", "words"))),
        ["words", "TextVectorization"],
    ),
    "zip bomb": (_bomb(), ["zip bomb"]),
    "entry named ../../x": (_traversal(), ["../../x"]),
    "truncated": (keras_zip(sequential_config())[:100], ["not a readable zip"]),
    "empty": (b"", ["empty"]),
    "not a model": (
        keras_zip({"class_name": "Lambda", "module": "keras.layers"}),
        ["not a Keras Sequential"],
    ),
}


@pytest.mark.parametrize("attack", sorted(HOSTILE_MODELS))
def test_a_hostile_model_file_is_refused_naming_the_problem(sqlite_client: TestClient, attack: str) -> None:
    content, words = HOSTILE_MODELS[attack]
    response = _post_model(sqlite_client, content)
    assert response.status_code == 422, response.text
    problem = _problem(response)
    for word in words:
        assert word in problem, problem
    _still_serving(sqlite_client)


HOSTILE_DATA = {
    "object array": (
        npz_bytes(
            x_train=np.array([{"a": 1}], dtype=object),
            y_train=np.zeros(1),
            x_test=np.zeros((1, 1)),
            y_test=np.zeros(1),
        ),
        ["x_train", "object"],
    ),
    "NaN": (
        npz_bytes(
            x_train=np.array([[np.nan]], np.float32),
            y_train=np.zeros(1, np.int64),
            x_test=np.zeros((1, 1), np.float32),
            y_test=np.zeros(1, np.int64),
        ),
        ["x_train", "NaN"],
    ),
    "missing key": (npz_bytes(x_train=np.zeros((2, 1))), ["lacks", "y_train"]),
    "empty": (b"", ["empty"]),
}


@pytest.mark.parametrize("attack", sorted(HOSTILE_DATA))
def test_a_hostile_data_file_is_refused_naming_the_problem(sqlite_client: TestClient, attack: str) -> None:
    content, words = HOSTILE_DATA[attack]
    response = _post_data(sqlite_client, ("d.npz", content))
    assert response.status_code == 422, response.text
    problem = _problem(response)
    for word in words:
        assert word in problem, problem
    _still_serving(sqlite_client)


def test_a_huge_declared_shape_is_refused_from_the_header_before_loading(sqlite_client: TestClient) -> None:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (10**6, 10**6)}
    )
    small = io.BytesIO()
    np.save(small, np.zeros(1, np.float32))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "x_train.npy",
            np.lib.format.MAGIC_PREFIX + b"\x01\x00" + header.getvalue()[8:] if False else header.getvalue(),
        )
        for key in ("y_train", "x_test", "y_test"):
            archive.writestr(f"{key}.npy", small.getvalue())
    response = _post_data(sqlite_client, ("huge.npz", buffer.getvalue()))
    assert response.status_code == 422, response.text
    assert "x_train" in _problem(response) and "(1000000, 1000000)" in _problem(response)


def test_a_body_over_the_model_limit_is_refused_while_streaming(sqlite_settings: Settings) -> None:
    from servers import admin_app

    settings = Settings(
        data_dir=sqlite_settings.data_dir, broker_url="memory://", max_model_upload_bytes=4096
    )
    app = admin_app(settings, RecordingQueue())
    read = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal read
        read += 1
        head = b'--x\r\nContent-Disposition: form-data; name="file"; filename="m.keras"\r\n\r\n'
        return {"type": "http.request", "body": head if read == 1 else b"-" * 1024, "more_body": read < 1000}

    async def send(message: Message) -> None:
        sent.append(message)

    headers = [(b"host", b"localhost"), (b"content-type", b"multipart/form-data; boundary=x")]
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/models",
        "headers": headers,
        "query_string": b"",
        "scheme": "http",
        "server": ("localhost", 80),
        "client": ("127.0.0.1", 1),
        "app": app,
    }
    anyio.run(app, scope, receive, send)
    assert sent[0]["status"] == 413
    assert read <= 6  # the server stopped reading at the chunk that crossed 4,096 bytes
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert "4,096" in json.loads(body)["detail"]
    with TestClient(app) as client:
        assert client.get("/api/health").status_code == 200


def test_a_cross_site_multipart_upload_is_refused(sqlite_client: TestClient) -> None:
    response = sqlite_client.post(
        "/api/models", files={"file": ("m.keras", b"x")}, headers={"Origin": "http://evil.example"}
    )
    assert response.status_code == 403
    assert response.json()["code"] == "cross_origin"


def test_multipart_is_refused_on_every_other_route(sqlite_client: TestClient) -> None:
    response = sqlite_client.post("/api/experiments", files={"file": ("m.keras", b"x")})
    assert response.status_code == 415


def test_a_cookie_upload_without_the_csrf_header_is_refused(sqlite_client: TestClient) -> None:
    sqlite_client.cookies.set("prunelab_session", "abc")
    refused = sqlite_client.post("/api/models", files={"file": ("m.keras", b"x")})
    assert refused.status_code == 403 and refused.json()["code"] == "csrf_missing"
    # with the header the request reaches sign-in, which finds no such session (401), not the file
    passed = sqlite_client.post(
        "/api/models", files={"file": ("m.keras", b"x")}, headers={"X-CSRF-Token": "t"}
    )
    assert passed.status_code == 401


def test_a_model_upload_is_stored_once_and_read_as_a_spec(client: TestClient, tmp_path: Path) -> None:
    content = small_dense_keras(tmp_path / "small.keras").read_bytes()
    first = _post_model(client, content, "small.keras", name="small", notes="a test")
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["summary"]["input_shape"] == [4]
    assert body["summary"]["prunable"] == ["hidden"]
    assert body["summary"]["parameters"] == 4 * 6 + 6 + 6 * 3 + 3
    again = _post_model(client, content, "other-name.keras")
    assert again.status_code == 200 and again.json()["id"] == body["id"] and again.json()["existing"]
    listed = client.get("/api/models").json()
    assert client.get("/api/datasets/uploaded").json() == []
    assert [item["id"] for item in listed] == [body["id"]]
    downloaded = client.get(body["download_url"])
    assert downloaded.content == content

    data = _post_data(client, ("tiny.npz", tiny_npz()))
    assert data.status_code == 201, data.text
    assert data.json()["summary"]["classes"] == 3
    spec = {
        "name": "uploaded",
        "model": {"uploaded": body["id"], "weights": "trained"},
        "dataset": {"name": "npz", "id": data.json()["id"]},
        "training": {"loss": "crossentropy", "epochs": 1},
    }
    created = client.post("/api/experiments", json={"spec": spec})
    assert created.status_code == 202, created.text
    stored = client.get(created.json()["url"]).json()["spec"]
    assert stored["uploaded_model"] == {"id": body["id"], "weights": "trained", "sha256": body["sha256"]}
    assert [layer["name"] for layer in stored["model"]["layers"]] == ["hidden", "out"]
    assert client.get(f"/api/models/{body['id']}").json()["used_by"] == [created.json()["id"]]
    assert client.delete(f"/api/models/{body['id']}").status_code == 409


def test_a_spec_naming_an_unknown_upload_is_a_422_on_the_model_field(sqlite_client: TestClient) -> None:
    spec = {"name": "x", "model": {"uploaded": 999}, "dataset": {"name": "npz", "id": 999}}
    response = sqlite_client.post("/api/experiments", json={"spec": spec})
    assert response.status_code == 422
    fields = [issue["loc"] for issue in response.json()["detail"]]
    assert ["body", "spec", "model"] in fields, fields
    assert "no uploaded model 999" in response.text


@pytest.mark.parametrize("path", ["/etc/passwd", "../../x"])
def test_an_npz_path_outside_the_data_directory_is_refused(sqlite_client: TestClient, path: str) -> None:
    spec = {"name": "x", "model": "sum-mlp", "dataset": {"name": "npz", "path": path}}
    response = sqlite_client.post("/api/experiments", json={"spec": spec})
    assert response.status_code == 422
    assert [issue["field"] for issue in response.json()["detail"]] == ["spec.dataset.path"]
    assert "/etc" not in response.text.replace(path, "")
    _still_serving(sqlite_client)


def test_a_symlink_out_of_the_data_directory_is_refused(
    sqlite_client: TestClient, sqlite_settings: Settings
) -> None:
    (sqlite_settings.data_dir / "link.npz").symlink_to("/etc/passwd")
    spec = {"name": "x", "model": "sum-mlp", "dataset": {"name": "npz", "path": "link.npz"}}
    response = sqlite_client.post("/api/experiments", json={"spec": spec})
    assert response.status_code == 422
    assert [issue["field"] for issue in response.json()["detail"]] == ["spec.dataset.path"]


def test_nothing_is_written_outside_the_store(sqlite_client: TestClient, sqlite_settings: Settings) -> None:
    before = sorted(p.name for p in sqlite_settings.data_dir.iterdir())
    _post_model(sqlite_client, _traversal())
    assert sorted(p.name for p in sqlite_settings.data_dir.iterdir()) == before
    assert not Path("x").exists()
    with sqlite_client.app.state.context.session_factory() as session:  # type: ignore[attr-defined]
        assert session.query(Upload).count() == 0
