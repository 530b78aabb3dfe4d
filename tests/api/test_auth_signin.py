"""Signing in: the session cookie and its CSRF token, the one-time link, locks after failed attempts,
submission caps, the audit trail of sign-ins and token use, and authentication off (issue 15)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from servers import RecordingQueue

from backend.app import create_app
from backend.auth.bootstrap import UnsafeBind, is_loopback, signin_url
from backend.auth.roles import Role
from backend.auth.users import add_user
from backend.db import session_scope
from backend.models import ApiToken
from backend.settings import Settings


def _app(settings: Settings, **overrides: Any) -> FastAPI:
    return create_app(settings.model_copy(update=overrides), RecordingQueue())


@pytest.fixture
def app_and_token(sqlite_settings: Settings) -> Iterator[tuple[TestClient, str]]:
    app = _app(sqlite_settings, signin_attempts=3, submissions_per_minute=2)
    with session_scope(app.state.context.session_factory) as session:
        token = add_user(session, "alice", Role.member)
    with TestClient(app) as client:
        yield client, token


def test_tokens_are_random_and_stored_only_as_hashes(app_and_token: tuple[TestClient, str]) -> None:
    client, token = app_and_token
    assert len(token) >= 43  # 32 random bytes, URL-safe base64
    with session_scope(client.app.state.context.session_factory) as session:  # type: ignore[attr-defined]
        stored = [row.token_hash for row in session.query(ApiToken)]
    assert token not in stored
    assert all(len(value) == 64 for value in stored)


def test_signing_in_sets_httponly_lax_cookies_and_the_session_reads(
    app_and_token: tuple[TestClient, str],
) -> None:
    client, token = app_and_token
    response = client.post("/api/signin", json={"token": token})
    assert response.status_code == 200
    assert response.json() == {"name": "alice", "role": "member"}
    cookies = response.headers.get_list("set-cookie")
    session_cookie = next(c for c in cookies if c.startswith("prunelab_session="))
    csrf_cookie = next(c for c in cookies if c.startswith("prunelab_csrf="))
    assert (
        "HttpOnly" in session_cookie
        and "SameSite=lax" in session_cookie
        and "Max-Age=1209600" in session_cookie
    )
    assert "HttpOnly" not in csrf_cookie
    assert "Secure" not in session_cookie  # plain HTTP here
    assert client.get("/api/me").json() == {"name": "alice", "role": "member", "via": "session"}
    assert client.get("/", follow_redirects=False).status_code == 200


def test_a_cookie_request_without_the_csrf_token_is_refused(
    app_and_token: tuple[TestClient, str], spec: dict[str, Any]
) -> None:
    client, token = app_and_token
    client.post("/api/signin", json={"token": token})
    refused = client.post("/api/experiments", json={"spec": spec})
    assert refused.status_code == 403
    assert "X-CSRF-Token" in refused.json()["detail"]
    wrong = client.post("/api/experiments", json={"spec": spec}, headers={"X-CSRF-Token": "guess"})
    assert wrong.status_code == 403
    csrf = client.cookies["prunelab_csrf"]
    accepted = client.post("/api/experiments", json={"spec": spec}, headers={"X-CSRF-Token": csrf})
    assert accepted.status_code == 202


def test_bearer_requests_need_no_csrf_token(
    app_and_token: tuple[TestClient, str], spec: dict[str, Any]
) -> None:
    client, token = app_and_token
    response = client.post(
        "/api/experiments", json={"spec": spec}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 202


def test_signing_out_ends_the_session(app_and_token: tuple[TestClient, str]) -> None:
    client, token = app_and_token
    client.post("/api/signin", json={"token": token})
    secret = client.cookies["prunelab_session"]
    assert client.post("/api/signout", json={}).status_code == 204
    client.cookies.set("prunelab_session", secret)  # a stolen copy of the cookie no longer works
    assert client.get("/api/me").status_code == 401
    assert client.get("/", follow_redirects=False).status_code == 303


def test_brute_force_on_signin_locks_the_address_with_a_clear_message(
    app_and_token: tuple[TestClient, str],
) -> None:
    client, token = app_and_token
    for attempt in range(3):
        assert client.post("/api/signin", json={"token": f"guess-{attempt}"}).status_code == 401
    locked = client.post("/api/signin", json={"token": token})
    assert locked.status_code == 429
    assert "locked" in locked.json()["detail"]
    assert int(locked.headers["Retry-After"]) > 0


def test_failed_signins_naming_a_user_lock_that_user(sqlite_settings: Settings) -> None:
    app = _app(sqlite_settings, signin_attempts=2)
    with session_scope(app.state.context.session_factory) as session:
        token = add_user(session, "alice", Role.member)
    with TestClient(app) as client:
        for _ in range(2):
            client.post("/api/signin", json={"token": "guess", "name": "alice"})
        # another address is still locked out of alice (the address lock clears for a new client)
        with TestClient(app, client=("10.0.0.9", 5000)) as other:
            locked = other.post("/api/signin", json={"token": token, "name": "alice"})
        assert locked.status_code == 429
        assert "alice" in locked.json()["detail"]


def test_submissions_per_user_per_minute_are_capped(
    app_and_token: tuple[TestClient, str], spec: dict[str, Any]
) -> None:
    client, token = app_and_token
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(2):
        assert client.post("/api/experiments", json={"spec": spec}, headers=headers).status_code == 202
    capped = client.post("/api/experiments", json={"spec": spec}, headers=headers)
    assert capped.status_code == 429
    assert int(capped.headers["Retry-After"]) >= 1


def test_the_first_admins_signin_link_works_once(sqlite_settings: Settings) -> None:
    app = _app(sqlite_settings)
    url = signin_url(sqlite_settings, app.state.context.session_factory)
    assert url is not None and url.startswith("http://127.0.0.1:")
    assert signin_url(sqlite_settings, app.state.context.session_factory) is None  # users exist now
    path = url.split(":", 2)[2].split("/", 1)[1]
    with TestClient(app) as client:
        first = client.get("/" + path + "&next=/new", follow_redirects=False)
        assert first.status_code == 303
        assert first.headers["location"] == "/new"
        assert client.get("/api/me").json()["name"] == "admin"
    with TestClient(app) as again:
        second = again.get("/" + path, follow_redirects=False)
        assert second.status_code == 303
        assert second.headers["location"].startswith("/signin?next=")
        assert "prunelab_session" not in again.cookies


def test_signin_next_never_leaves_the_server(sqlite_settings: Settings) -> None:
    app = _app(sqlite_settings)
    url = signin_url(sqlite_settings, app.state.context.session_factory)
    assert url is not None
    with TestClient(app) as client:
        response = client.get(
            "/signin",
            params={"token": url.rsplit("=", 1)[1], "next": "//evil.example/x"},
            follow_redirects=False,
        )
    assert response.headers["location"] == "/"


def test_signins_failures_and_daily_token_use_are_audited(app_and_token: tuple[TestClient, str]) -> None:
    client, token = app_and_token
    headers = {"Authorization": f"Bearer {token}"}
    client.get("/api/experiments", headers=headers)
    client.get("/api/experiments", headers=headers)
    client.post("/api/signin", json={"token": "wrong"})
    client.post("/api/signin", json={"token": token})
    with session_scope(client.app.state.context.session_factory) as session:  # type: ignore[attr-defined]
        from backend.auth.audit import audit_page

        events = [(e.action, e.actor, e.address) for e in reversed(audit_page(session, 0, 50).items)]
    assert events == [
        ("token.use", "alice", "testclient"),
        ("signin.failure", None, "testclient"),
        ("signin", "alice", "testclient"),
    ]


def test_authentication_off_is_refused_beyond_loopback(sqlite_settings: Settings) -> None:
    with pytest.raises(UnsafeBind, match="PRUNELAB_AUTH=off"):
        _app(sqlite_settings, auth=False, host="0.0.0.0")
    assert is_loopback("127.0.0.2") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("10.1.2.3") and not is_loopback("example.org")


def test_authentication_off_on_loopback_makes_every_request_the_local_admin(
    sqlite_settings: Settings, spec: dict[str, Any]
) -> None:
    with TestClient(_app(sqlite_settings, auth=False)) as client:
        assert client.get("/api/me").json() == {"name": "local", "role": "admin", "via": "local"}
        created = client.post("/api/experiments", json={"spec": spec})
        assert created.status_code == 202
        assert client.get(f"/api/experiments/{created.json()['id']}").json()["owner"] == "local"


def test_the_environment_turns_authentication_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRUNELAB_AUTH", "off")
    assert Settings().auth is False
