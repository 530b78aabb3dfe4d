"""No cross-site request may change anything, and every answer carries the security headers (issue 12,
"The localhost default is reachable from any web page")."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from servers import admin_app as create_app  # signed in as the test admin

from backend.api.pages import CONTENT_SECURITY_POLICY
from backend.api.security import trusted_hosts
from backend.settings import DEFAULT_ALLOWED_HOSTS, Settings

OWN = "http://testserver"


def _queued(client: TestClient, spec: dict[str, Any]) -> str:
    response = client.post("/api/experiments", json={"spec": spec})
    assert response.status_code == 202, response.text
    url: str = response.json()["url"]
    return url


def test_the_default_hosts_are_the_loopback_names_and_the_bound_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PRUNELAB_ALLOWED_HOSTS", raising=False)
    settings = Settings(data_dir=tmp_path)
    assert settings.allowed_hosts == list(DEFAULT_ALLOWED_HOSTS)
    assert trusted_hosts(settings) == {"localhost", "127.0.0.1", "[::1]"}
    assert trusted_hosts(Settings(data_dir=tmp_path, host="::1")) == {"localhost", "127.0.0.1", "[::1]"}
    assert "0.0.0.0" not in trusted_hosts(Settings(data_dir=tmp_path, host="0.0.0.0"))
    assert "lab.example.org" in trusted_hosts(Settings(data_dir=tmp_path, host="lab.example.org"))
    monkeypatch.setenv("PRUNELAB_ALLOWED_HOSTS", "Lab.Example.org, localhost")
    assert trusted_hosts(Settings(data_dir=tmp_path)) == {"lab.example.org", "localhost", "127.0.0.1"}


@pytest.mark.parametrize(
    "host", ["127.0.0.1:8000", "localhost", "localhost:1234", "[::1]:8000", "testserver"]
)
def test_a_configured_host_with_any_port_is_served(sqlite_client: TestClient, host: str) -> None:
    assert sqlite_client.get("/api/presets", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("host", ["rebind.attacker.example", "attacker.example:8000", "127.0.0.2", "", "a b"])
def test_another_host_name_is_refused_with_400(
    sqlite_client: TestClient, spec: dict[str, Any], host: str
) -> None:
    read = sqlite_client.get("/api/experiments", headers={"Host": host})
    create = sqlite_client.post("/api/experiments", json={"spec": spec}, headers={"Host": host})

    for response in (read, create):
        assert response.status_code == 400
        assert response.json() == {
            "detail": "this server does not answer to that host name",
            "code": "host_not_allowed",
        }
    assert sqlite_client.get("/api/experiments").json()["total"] == 0


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://attacker.example"},
        {"Origin": "null"},
        {"Origin": "https://testserver"},  # another scheme
        {"Origin": "http://testserver:8080"},  # another port
        {"Referer": "http://attacker.example/page.html"},
    ],
)
def test_a_cross_site_request_changes_nothing(
    sqlite_client: TestClient, queue: Any, spec: dict[str, Any], headers: dict[str, str]
) -> None:
    url = _queued(sqlite_client, spec)
    attempts = [
        sqlite_client.post(f"{url}/cancel", json={}, headers=headers),
        sqlite_client.post(f"{url}/rerun", json={}, headers=headers),
        sqlite_client.post("/api/experiments", json={"spec": spec}, headers=headers),
        sqlite_client.delete(url, headers=headers),
        sqlite_client.post(
            "/api/specs/parse", content="name: x", headers={**headers, "Content-Type": "text/yaml"}
        ),
    ]

    for response in attempts:
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "cross_origin"
    assert sqlite_client.get(url).json()["status"] == "queued"
    assert len(queue.ids) == 1 and sqlite_client.get("/api/experiments").json()["total"] == 1


@pytest.mark.parametrize(
    "headers", [{"Origin": OWN}, {"Origin": "http://testserver:80"}, {"Referer": f"{OWN}/experiments/1"}, {}]
)
def test_the_servers_own_pages_and_non_browser_clients_may_change_things(
    sqlite_client: TestClient, spec: dict[str, Any], headers: dict[str, str]
) -> None:
    url = _queued(sqlite_client, spec)

    response = sqlite_client.post(f"{url}/cancel", json={}, headers=headers)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (None, None),
        ("text/plain", "{}"),
        ("application/x-www-form-urlencoded", "a=1"),
        ("multipart/form-data; boundary=x", "--x--"),
    ],
)
def test_a_post_must_declare_json_even_without_a_body(
    sqlite_client: TestClient, spec: dict[str, Any], content_type: str | None, body: str | None
) -> None:
    url = _queued(sqlite_client, spec)
    headers = {"Content-Type": content_type} if content_type else {}

    responses = [
        sqlite_client.post(f"{url}/{action}", content=body, headers=headers)
        for action in ("cancel", "rerun", "benchmarks")
    ]

    for response in responses:
        assert response.status_code == 415, response.text
        assert response.json()["code"] == "unsupported_media_type"
        assert "application/json" in response.json()["detail"]
    assert sqlite_client.get(url).json()["status"] == "queued"
    assert sqlite_client.get("/api/experiments").json()["total"] == 1


def test_json_types_with_parameters_and_suffixes_are_json(
    sqlite_client: TestClient, spec: dict[str, Any]
) -> None:
    url = _queued(sqlite_client, spec)
    headers = {"Content-Type": "application/vnd.prunelab+json; charset=utf-8"}

    assert sqlite_client.post(f"{url}/cancel", content="{}", headers=headers).status_code == 200


def test_the_spec_parser_still_takes_yaml_text(sqlite_client: TestClient) -> None:
    text = "name: x\nmodel: sum-mlp\ndataset: {name: sum}\n"

    as_yaml = sqlite_client.post("/api/specs/parse", content=text, headers={"Content-Type": "text/yaml"})
    untyped = sqlite_client.post("/api/specs/parse", content=text)

    assert as_yaml.status_code == 200
    assert untyped.status_code == 415


@pytest.mark.parametrize(
    "path",
    [
        "/api/presets",
        "/api/experiments/999",
        "/openapi.json",
        "/",
        "/static/js/api.js",
        "/vendor/plotly.min.js",
    ],
)
def test_every_answer_carries_the_security_headers(sqlite_client: TestClient, path: str) -> None:
    response = sqlite_client.get(path)

    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY


def test_refusals_carry_the_security_headers_too(sqlite_client: TestClient) -> None:
    response = sqlite_client.get("/api/presets", headers={"Host": "attacker.example"})

    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_the_api_explorers_policy_allows_this_server_and_their_start_up_script_only(
    sqlite_client: TestClient,
) -> None:
    docs = sqlite_client.get("/docs")
    redoc = sqlite_client.get("/redoc")

    policy = docs.headers["Content-Security-Policy"]
    assert redoc.headers["Content-Security-Policy"] == policy
    assert docs.headers["X-Frame-Options"] == "DENY" and "frame-ancestors 'none'" in policy
    script_src = next(part for part in policy.split("; ") if part.startswith("script-src "))
    inline = re.findall(r"<script>(.*?)</script>", docs.text, flags=re.DOTALL)
    assert len(inline) == 1
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    assert script_src.split()[1:] == ["'self'", f"'sha256-{digest}'"]
    assert "https:" not in policy  # every file of the explorers comes from this server
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src


def test_the_default_settings_refuse_the_test_clients_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PRUNELAB_ALLOWED_HOSTS", raising=False)
    settings = Settings(data_dir=tmp_path, broker_url="memory://", auth=False)  # no users table here

    with TestClient(create_app(settings, check_migrations=False, queue=_NoQueue())) as client:
        assert client.get("/api/presets").status_code == 400
        assert client.get("/api/presets", headers={"Host": "127.0.0.1:8000"}).status_code == 200


class _NoQueue:
    def enqueue(self, experiment_id: int) -> None:
        raise AssertionError("nothing is queued here")
