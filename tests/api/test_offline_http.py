"""Offline and small over HTTP: the API explorers' files come from this server, answers are gzip-encoded
and cached with ETags, event streams are never buffered, and unknown addresses get a 404 page or JSON."""

from __future__ import annotations

import gzip
import re
import time
from importlib.resources import files
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from backend.api.docs import DOCS_ASSETS
from backend.api.pages import CONTENT_SECURITY_POLICY
from backend.api.static_cache import IMMUTABLE
from backend.models import Status

PLOTLY = Path(str(files("plotly") / "package_data" / "plotly.min.js"))
GZIP = {"Accept-Encoding": "gzip"}


def _script_and_link_urls(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


# --------------------------------------------------------------------------------------------- /docs


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_api_explorers_load_every_file_from_this_server(sqlite_client: TestClient, path: str) -> None:
    page = sqlite_client.get(path)

    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    urls = _script_and_link_urls(page.text)
    assert urls and all(url.startswith("/vendor/docs/") for url in urls), urls
    for url in urls:
        asset = sqlite_client.get(url, headers=GZIP)
        assert asset.status_code == 200, url
        assert asset.headers["cache-control"] == IMMUTABLE  # the URL carries the file's version
        assert len(asset.content) > 1000
    assert "https://" not in page.headers["content-security-policy"]


def test_the_swagger_bundle_is_the_installed_packages(sqlite_client: TestClient) -> None:
    urls = _script_and_link_urls(sqlite_client.get("/docs").text)
    bundle = next(url for url in urls if ".js?v=" in url)

    served = sqlite_client.get(bundle).content

    assert served == (DOCS_ASSETS / "swagger-ui-bundle.js").read_bytes()


def test_the_swagger_page_sends_no_spec_url_to_a_validator(sqlite_client: TestClient) -> None:
    assert '"validatorUrl": null' in sqlite_client.get("/docs").text


# --------------------------------------------------------------------------------------------- compression


def test_plotly_js_is_sent_gzip_encoded_at_a_third_of_its_size(sqlite_client: TestClient) -> None:
    with sqlite_client.stream("GET", "/vendor/plotly.min.js", headers=GZIP) as response:
        raw = b"".join(response.iter_raw())

    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["vary"] == "Accept-Encoding"
    assert gzip.decompress(raw) == PLOTLY.read_bytes()
    assert len(raw) < PLOTLY.stat().st_size / 3
    assert response.headers["content-type"].startswith("text/javascript")


def test_a_client_that_does_not_accept_gzip_gets_the_plain_file(sqlite_client: TestClient) -> None:
    response = sqlite_client.get("/vendor/plotly.min.js", headers={"Accept-Encoding": "identity"})

    assert "content-encoding" not in response.headers
    assert response.content == PLOTLY.read_bytes()


def test_large_json_is_gzip_encoded_and_small_json_is_not(sqlite_client: TestClient) -> None:
    with sqlite_client.stream("GET", "/openapi.json", headers=GZIP) as large:
        raw = b"".join(large.iter_raw())
    small = sqlite_client.get("/api/health", headers=GZIP)

    assert large.headers["content-encoding"] == "gzip"
    assert gzip.decompress(raw).startswith(b'{"openapi":')
    assert "content-encoding" not in small.headers


def test_an_event_stream_is_not_encoded_and_flows_event_by_event(
    sqlite_app: FastAPI, sqlite_rows: Any, serve: Any
) -> None:
    experiment_id = sqlite_rows.experiment(status=Status.running.value)

    with (
        serve(sqlite_app) as server,
        httpx.Client(timeout=10) as client,
        client.stream("GET", f"{server.url}/api/experiments/{experiment_id}/events", headers=GZIP) as stream,
    ):
        started = time.monotonic()
        first = next(line for line in stream.iter_lines() if line.startswith("event:"))
        waited = time.monotonic() - started

    assert "content-encoding" not in stream.headers
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert first == "event: status" and waited < 5  # the running experiment's stream is still open


# --------------------------------------------------------------------------------------------- caching


@pytest.mark.parametrize("path", ["/", "/compare", "/static/js/plots.js", "/static/css/app.css"])
def test_pages_and_modules_are_revalidated_and_answered_304_when_unchanged(
    sqlite_client: TestClient, path: str
) -> None:
    first = sqlite_client.get(path, headers=GZIP)
    again = sqlite_client.get(path, headers={**GZIP, "If-None-Match": first.headers["etag"]})

    assert first.status_code == 200 and first.headers["cache-control"] == "no-cache"
    assert first.headers["content-encoding"] == "gzip"
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == first.headers["etag"]


def test_a_changed_etag_gets_the_whole_file(sqlite_client: TestClient) -> None:
    response = sqlite_client.get("/static/js/plots.js", headers={"If-None-Match": '"something-else"'})

    assert response.status_code == 200 and b"drawWhenVisible" in response.content


def test_pages_ask_for_plotly_at_a_versioned_url_cached_for_a_year(sqlite_client: TestClient) -> None:
    html = sqlite_client.get("/experiments/1").text
    url = next(url for url in _script_and_link_urls(html) if url.startswith("/vendor/plotly.min.js?v="))

    versioned = sqlite_client.get(url, headers=GZIP)
    plain = sqlite_client.get("/vendor/plotly.min.js", headers=GZIP)
    revalidated = sqlite_client.get(url, headers={**GZIP, "If-None-Match": versioned.headers["etag"]})

    assert versioned.headers["cache-control"] == IMMUTABLE
    assert plain.headers["cache-control"] == "public, max-age=86400"
    assert revalidated.status_code == 304


# --------------------------------------------------------------------------------------------- 404


@pytest.mark.parametrize("path", ["/nowhere", "/experiments/3/oops", "/compare/more"])
def test_an_unknown_page_is_a_404_page_in_the_dashboards_layout(sqlite_client: TestClient, path: str) -> None:
    response = sqlite_client.get(path, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "<title>Not found · prunelab</title>" in response.text
    assert response.text.count('<header class="nav">') == 1
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert path not in response.text  # the address is shown by the script, as text, never templated


@pytest.mark.parametrize(
    ("path", "accept"),
    [
        ("/api/nowhere", "text/html"),
        ("/api/experiments/1/nothing", "application/json"),
        ("/static/js/missing.js", "text/html"),
        ("/vendor/docs/missing.js", "*/*"),
        ("/nowhere", "application/json"),
    ],
)
def test_an_unknown_api_or_file_address_is_a_json_404(
    sqlite_client: TestClient, path: str, accept: str
) -> None:
    response = sqlite_client.get(path, headers={"Accept": accept})

    assert response.status_code == 404
    assert response.json() == {"detail": "nothing is at this address: check the path", "code": "not_found"}


def test_a_missing_experiment_is_still_the_services_404(sqlite_client: TestClient) -> None:
    response = sqlite_client.get("/api/experiments/4242")

    assert response.status_code == 404
    assert response.json() == {"detail": "experiment 4242 does not exist", "code": "not_found"}


def test_files_outside_the_static_folders_are_never_served(sqlite_client: TestClient) -> None:
    for path in (
        "/static/js/../../backend/app.py",
        "/static/js/%2e%2e/%2e%2e/pyproject.toml",
        "/static/js/a%00b",
    ):
        assert sqlite_client.get(path).status_code == 404, path


def test_model_files_are_sent_as_stored_with_their_sha256_etag(
    sqlite_client: TestClient, sqlite_rows: Any
) -> None:
    experiment_id = sqlite_rows.experiment()
    content = b"PK\x03\x04" + bytes(range(256)) * 40  # a .keras file is a zip: nothing to gain
    artifact_id = sqlite_rows.artifact(experiment_id, content)

    response = sqlite_client.get(f"/api/artifacts/{artifact_id}", headers=GZIP)

    assert "content-encoding" not in response.headers
    assert response.content == content
