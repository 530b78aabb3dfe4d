"""HTTP details a client relies on: a 405 names every method the path answers (``Allow``), and an
artifact is sent with a content type the OpenAPI document declares for it."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/api/experiments/1", {"GET", "PATCH", "DELETE"}),
        ("PATCH", "/api/experiments/1/cycles", {"GET"}),
        ("DELETE", "/api/experiments", {"GET", "POST"}),
        ("GET", "/api/experiments/1/cancel", {"POST"}),
        ("PUT", "/api/experiments/1/benchmarks", {"GET", "POST"}),
        ("DELETE", "/api/artifacts/1", {"GET"}),
    ],
)
def test_a_405_allows_every_method_of_the_path(
    sqlite_client: TestClient, method: str, path: str, allowed: set[str]
) -> None:
    response = sqlite_client.request(method, path)

    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == allowed
    assert response.json() == {"detail": "Method Not Allowed"}


def _template(path: str) -> re.Pattern[str]:
    """An OpenAPI path as a pattern: each ``{parameter}`` matches one path segment."""
    return re.compile("^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(path)) + "$")


def test_the_allow_header_matches_the_openapi_document(sqlite_client: TestClient) -> None:
    paths = sqlite_client.get("/openapi.json").json()["paths"]
    for path in paths:
        url = path.replace("{experiment_id}", "1").replace("{artifact_id}", "1").replace("{run_id}", "1")
        url = url.replace("{index}", "0").replace("{name}", "widths")
        # a fixed path such as /experiments/import also matches /experiments/{experiment_id}: the router
        # takes (and ``Allow`` names) the methods of every documented path the URL fits
        documented = {
            method.upper()
            for other, methods in paths.items()
            if _template(other).match(url)
            for method in methods
        }
        unused = next(m for m in ("PATCH", "PUT", "DELETE", "POST") if m not in documented)

        response = sqlite_client.request(unused, url)

        assert response.status_code == 405, (unused, path)
        assert set(response.headers["allow"].split(", ")) == documented, path


def _declared_artifact_types(client: TestClient) -> set[str]:
    operation = client.get("/openapi.json").json()["paths"]["/api/artifacts/{artifact_id}"]["get"]
    return set(operation["responses"]["200"]["content"])


@pytest.mark.parametrize(
    ("filename", "media_type", "sent"),
    [
        ("final.keras", "application/x-keras", "application/x-keras"),
        ("cycle-1-float32.tflite", "application/x-tflite", "application/x-tflite"),
        ("old.bin", "application/octet-stream", "application/octet-stream"),
        ("odd.html", "text/html", "application/octet-stream"),
    ],
)
def test_an_artifact_is_sent_as_a_declared_content_type(
    sqlite_client: TestClient, sqlite_rows: Any, filename: str, media_type: str, sent: str
) -> None:
    experiment_id = sqlite_rows.experiment(status="succeeded")
    artifact_id = sqlite_rows.artifact(experiment_id, b"bytes", filename=filename, media_type=media_type)

    response = sqlite_client.get(f"/api/artifacts/{artifact_id}")

    assert response.status_code == 200
    assert response.headers["content-type"] == sent
    assert sent in _declared_artifact_types(sqlite_client)
