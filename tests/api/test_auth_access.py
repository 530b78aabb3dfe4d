"""Who may reach what: every route needs a signed-in caller, viewers only read, members change only
their own experiments, and nobody sees another project's experiments (issue 15)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from servers import RecordingQueue

from backend.app import create_app
from backend.auth.projects import add_member, create_project
from backend.auth.roles import Role
from backend.auth.users import add_user, revoke_user
from backend.db import session_scope
from backend.models import Experiment
from backend.settings import Settings

#: Routes anyone may call (the sign-in page and its routes, and the health check).
PUBLIC = {("GET", "/api/health"), ("POST", "/api/signin"), ("POST", "/api/signout")}
PAGES = ("/", "/compare", "/new", "/experiments/1", "/audit", "/vendor/plotly.min.js")
CHANGING = {"post", "put", "patch", "delete"}


@dataclass
class Team:
    """An app with users: tokens by name, and the id of the project ``other``."""

    app: FastAPI
    client: TestClient
    tokens: dict[str, str]
    other_project: int

    def headers(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    def create(self, name: str, spec: dict[str, Any], **body: Any) -> int:
        response = self.client.post(
            "/api/experiments", json={"spec": spec, **body}, headers=self.headers(name)
        )
        assert response.status_code == 202, response.text
        created: int = response.json()["id"]
        return created


def make_team(settings: Settings) -> Iterator[Team]:
    """admin, alice and bob (members), vera (viewer) in the default project; carol (member) only in
    ``other``."""
    app = create_app(settings, RecordingQueue())
    tokens: dict[str, str] = {}
    with session_scope(app.state.context.session_factory) as session:
        for name, role in (
            ("root", Role.admin),
            ("alice", Role.member),
            ("bob", Role.member),
            ("vera", Role.viewer),
        ):
            tokens[name] = add_user(session, name, role)
        other = create_project(session, "other").id
        tokens["carol"] = add_user(session, "carol", Role.member, project_id=other)
        add_member(session, other, "carol", Role.member)
    with TestClient(app) as client:
        yield Team(app, client, tokens, other)


@pytest.fixture
def team(settings: Settings) -> Iterator[Team]:
    yield from make_team(settings)


@pytest.fixture
def sqlite_team(sqlite_settings: Settings) -> Iterator[Team]:
    yield from make_team(sqlite_settings)


def concrete(path: str) -> str:
    """An OpenAPI path with every parameter set to 1 (``figures/{name}`` to a real figure name)."""
    path = path.replace("/figures/{name}", "/figures/widths")
    return re.sub(r"\{[^}]+\}", "1", path)


def operations(app: FastAPI) -> list[tuple[str, str]]:
    """(method, concrete path) of every operation in the OpenAPI document."""
    found = []
    for path, item in app.openapi()["paths"].items():
        for method in item:
            found.append(
                (method.upper(), concrete(path).replace("/compare/figures/1", "/compare/figures/pareto"))
            )
    return found


def call(client: TestClient, method: str, path: str, **kwargs: Any) -> Any:
    if "/compare" in path:
        path += "?ids=1,2"
    if method in ("GET", "HEAD"):
        return client.request(method, path, **kwargs)
    return client.request(method, path, json={}, **kwargs)


def test_every_route_refuses_a_request_without_a_token(sqlite_team: Team) -> None:
    checked = 0
    for method, path in operations(sqlite_team.app):
        if (method, path) in PUBLIC:
            continue
        response = call(sqlite_team.client, method, path)
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["code"] == "not_signed_in"
        assert response.headers["WWW-Authenticate"] == "Bearer"
        checked += 1
    assert checked > 25


def test_a_wrong_or_malformed_token_is_refused(sqlite_team: Team, spec: dict[str, Any]) -> None:
    for header in ("Bearer nope", "Basic abc", "Bearer ", sqlite_team.tokens["alice"]):
        response = sqlite_team.client.get("/api/experiments", headers={"Authorization": header})
        assert response.status_code == 401, header


def test_health_and_the_signin_page_need_no_token(sqlite_team: Team) -> None:
    assert sqlite_team.client.get("/api/health").status_code in (200, 503)
    page = sqlite_team.client.get("/signin")
    assert page.status_code == 200
    assert "signin.js" in page.text
    assert sqlite_team.client.get("/static/js/pages/signin.js").status_code == 200


def test_pages_without_a_session_redirect_to_signin(sqlite_team: Team) -> None:
    for path in PAGES:
        response = sqlite_team.client.get(path + "?x=1", follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/signin?next=" + (path + "?x=1").replace("/", "%2F").replace(
            "?", "%3F"
        ).replace("=", "%3D")


def test_a_viewer_is_refused_every_state_changing_route(sqlite_team: Team) -> None:
    checked = 0
    for method, path in operations(sqlite_team.app):
        if method.lower() not in CHANGING or (method, path) in PUBLIC:
            continue
        response = call(sqlite_team.client, method, path, headers=sqlite_team.headers("vera"))
        assert response.status_code == 403, (method, path, response.text)
        checked += 1
    assert checked >= 8


def test_a_viewer_reads_the_projects_experiments(team: Team, spec: dict[str, Any]) -> None:
    experiment_id = team.create("alice", spec)
    response = team.client.get(f"/api/experiments/{experiment_id}", headers=team.headers("vera"))
    assert response.status_code == 200
    listed = team.client.get("/api/experiments", headers=team.headers("vera")).json()
    assert [item["id"] for item in listed["items"]] == [experiment_id]


def test_a_member_cannot_cancel_edit_rerun_or_delete_another_members_experiment(
    team: Team, spec: dict[str, Any]
) -> None:
    alices = team.create("alice", spec)
    bob = team.headers("bob")
    for method, path in (
        ("POST", f"/api/experiments/{alices}/cancel"),
        ("POST", f"/api/experiments/{alices}/rerun"),
        ("PATCH", f"/api/experiments/{alices}"),
        ("DELETE", f"/api/experiments/{alices}"),
    ):
        response = team.client.request(method, path, json={}, headers=bob)
        assert response.status_code == 403, (method, path)
    assert team.client.get(f"/api/experiments/{alices}", headers=bob).json()["status"] == "queued"
    own = team.client.post(f"/api/experiments/{alices}/cancel", json={}, headers=team.headers("alice"))
    assert own.status_code == 200
    assert team.client.delete(f"/api/experiments/{alices}", headers=team.headers("alice")).status_code == 204


def test_an_admin_may_delete_anyones_experiment(team: Team, spec: dict[str, Any]) -> None:
    alices = team.create("alice", spec)
    team.client.post(f"/api/experiments/{alices}/cancel", json={}, headers=team.headers("root"))
    assert team.client.delete(f"/api/experiments/{alices}", headers=team.headers("root")).status_code == 204


def test_another_projects_experiments_are_invisible(team: Team, spec: dict[str, Any], rows: Any) -> None:
    hidden = team.create("alice", spec)
    artifact = rows.artifact(hidden, b"model bytes")
    rows.cycle(hidden, 0)
    carol = team.headers("carol")
    mine = team.create("carol", spec)
    listed = team.client.get("/api/experiments", headers=carol).json()
    assert [item["id"] for item in listed["items"]] == [mine]
    assert listed["total"] == 1
    for path in (
        f"/api/experiments/{hidden}",
        f"/api/experiments/{hidden}/cycles",
        f"/api/experiments/{hidden}/epochs",
        f"/api/experiments/{hidden}/artifacts",
        f"/api/experiments/{hidden}/cycles/0/layers",
        f"/api/experiments/{hidden}/events",
        f"/api/experiments/{hidden}/figures",
        f"/api/experiments/{hidden}/figures/widths",
        f"/api/experiments/{hidden}/architecture?before=0",
        f"/api/experiments/{hidden}/benchmarks",
        f"/api/artifacts/{artifact}",
        f"/api/compare?ids={mine},{hidden}",
        f"/api/compare/figures/pareto?ids={mine},{hidden}",
        f"/api/compare/export?ids={mine},{hidden}",
    ):
        response = team.client.get(path, headers=carol)
        assert response.status_code == 404, (path, response.text)
        assert str(hidden) in response.json()["detail"] or "artifact" in response.json()["detail"]
    assert team.client.get(f"/api/experiments/{hidden}", headers=team.headers("bob")).status_code == 200


def test_an_experiment_goes_to_the_named_project_only_for_its_members(
    team: Team, spec: dict[str, Any]
) -> None:
    created = team.create("carol", spec, project="other")
    with session_scope(team.app.state.context.session_factory) as session:
        assert session.get_one(Experiment, created).project_id == team.other_project
    refused = team.client.post(
        "/api/experiments", json={"spec": spec, "project": "other"}, headers=team.headers("alice")
    )
    assert refused.status_code == 404
    projects = team.client.get("/api/projects", headers=team.headers("carol")).json()
    assert [project["name"] for project in projects] == ["other"]


def test_a_revoked_token_is_refused_at_once(team: Team) -> None:
    alice = team.headers("alice")
    assert team.client.get("/api/experiments", headers=alice).status_code == 200
    with session_scope(team.app.state.context.session_factory) as session:
        revoke_user(session, "alice")
    assert team.client.get("/api/experiments", headers=alice).status_code == 401


def test_the_owner_is_the_caller_even_when_the_body_names_another(team: Team, spec: dict[str, Any]) -> None:
    created = team.create("alice", spec, owner="mallory")
    detail = team.client.get(f"/api/experiments/{created}", headers=team.headers("alice")).json()
    assert detail["owner"] == "alice"


def test_the_owner_edits_tags_and_notes_and_the_editor_is_kept(team: Team, spec: dict[str, Any]) -> None:
    created = team.create("alice", spec, tags=["old"])
    response = team.client.patch(
        f"/api/experiments/{created}",
        json={"tags": ["new", "new", "b"], "notes": "why"},
        headers=team.headers("alice"),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["tags"], body["notes"], body["edited_by"]) == (["new", "b"], "why", "alice")
    assert body["edited_at"] is not None
    notes_only = team.client.patch(
        f"/api/experiments/{created}", json={"notes": "n2"}, headers=team.headers("root")
    )
    assert (notes_only.json()["tags"], notes_only.json()["notes"], notes_only.json()["edited_by"]) == (
        ["new", "b"],
        "n2",
        "root",
    )
    bad = team.client.patch(f"/api/experiments/{created}", json={"owner": "x"}, headers=team.headers("alice"))
    assert bad.status_code == 422


def test_projects_and_members_are_managed_by_admins_only(sqlite_team: Team) -> None:
    client, alice, root = sqlite_team.client, sqlite_team.headers("alice"), sqlite_team.headers("root")
    assert client.post("/api/projects", json={"name": "p2"}, headers=alice).status_code == 403
    created = client.post("/api/projects", json={"name": "p2"}, headers=root)
    assert created.status_code == 201
    project = created.json()["id"]
    member = client.post(f"/api/projects/{project}/members", json={"user": "alice"}, headers=root)
    assert member.status_code == 204
    names = {p["name"] for p in client.get("/api/projects", headers=alice).json()}
    assert names == {"default", "p2"}
    assert client.get("/api/audit", headers=alice).status_code == 403
    actions = [event["action"] for event in client.get("/api/audit", headers=root).json()["items"]]
    assert actions[:2] == ["project.member", "project.create"]


def test_a_rerun_stays_in_its_project_and_belongs_to_whoever_reran_it(
    team: Team, spec: dict[str, Any]
) -> None:
    carols = team.create("carol", spec, project="other")
    rerun = team.client.post(f"/api/experiments/{carols}/rerun", json={}, headers=team.headers("root"))
    assert rerun.status_code == 202
    copy = team.client.get(f"/api/experiments/{rerun.json()['id']}", headers=team.headers("carol")).json()
    assert (copy["owner"], copy["project_id"]) == ("root", team.other_project)
