"""Uploads belong to the uploader's project (issue 16 with issue 15's roles): other projects cannot see,
use or download them; only the uploader or an admin deletes, and only while no experiment uses them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_auth_access import Team, make_team  # noqa: F401 - the team fixture's builder
from uploads_files import small_dense_keras, tiny_npz

from backend.settings import Settings


@pytest.fixture
def sqlite_team(sqlite_settings: Settings) -> Iterator[Team]:
    yield from make_team(sqlite_settings)


def _upload_data(team: Team, name: str, content: bytes) -> dict[str, Any]:
    response = team.client.post(
        "/api/datasets", files={"file": ("d.npz", content)}, headers=team.headers(name)
    )
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


def test_another_projects_uploads_are_invisible_and_unusable(sqlite_team: Team) -> None:
    data = _upload_data(sqlite_team, "alice", tiny_npz())
    carol = sqlite_team.headers("carol")
    assert sqlite_team.client.get("/api/datasets/uploaded", headers=carol).json() == []
    for path in (f"/api/datasets/{data['id']}", f"/api/datasets/{data['id']}/file"):
        assert sqlite_team.client.get(path, headers=carol).status_code == 404
    spec = {"name": "x", "model": "sum-mlp", "dataset": {"name": "npz", "id": data["id"]}}
    refused = sqlite_team.client.post("/api/experiments", json={"spec": spec}, headers=carol)
    assert refused.status_code == 422 and f"no uploaded dataset {data['id']}" in refused.text
    # the same bytes in carol's project are a row of her own
    own = _upload_data(sqlite_team, "carol", tiny_npz())
    assert own["id"] != data["id"] and not own["existing"]
    assert (
        sqlite_team.client.get(f"/api/datasets/{data['id']}", headers=sqlite_team.headers("bob")).status_code
        == 200
    )


def test_a_viewer_cannot_upload_and_a_member_cannot_delete_anothers_upload(sqlite_team: Team) -> None:
    content = tiny_npz(seed=2)
    viewer = sqlite_team.client.post(
        "/api/datasets", files={"file": ("d.npz", content)}, headers=sqlite_team.headers("vera")
    )
    assert viewer.status_code == 403
    data = _upload_data(sqlite_team, "alice", content)
    path = f"/api/datasets/{data['id']}"
    assert sqlite_team.client.delete(path, headers=sqlite_team.headers("bob")).status_code == 403
    assert sqlite_team.client.delete(path, headers=sqlite_team.headers("alice")).status_code == 204
    assert sqlite_team.client.get(path, headers=sqlite_team.headers("alice")).status_code == 404


def test_a_model_whose_input_does_not_fit_the_data_is_refused_at_submit(
    sqlite_team: Team, tmp_path: Path
) -> None:
    alice = sqlite_team.headers("alice")
    model = sqlite_team.client.post(
        "/api/models",
        files={"file": ("m.keras", small_dense_keras(tmp_path / "m.keras", features=5).read_bytes())},
        headers=alice,
    ).json()
    data = _upload_data(sqlite_team, "alice", tiny_npz(features=4))
    spec = {
        "name": "x",
        "model": {"uploaded": model["id"]},
        "dataset": {"name": "npz", "id": data["id"]},
        "training": {"loss": "crossentropy"},
    }
    response = sqlite_team.client.post("/api/experiments", json={"spec": spec}, headers=alice)
    assert response.status_code == 422
    assert "inputs of shape (4,) do not fit model.input_shape (5,)" in response.text


def test_weights_that_do_not_match_the_config_are_refused(sqlite_team: Team, tmp_path: Path) -> None:
    import zipfile

    small = small_dense_keras(tmp_path / "small.keras", features=4)
    wide = small_dense_keras(tmp_path / "wide.keras", features=9)
    mixed = tmp_path / "mixed.keras"
    with zipfile.ZipFile(small) as a, zipfile.ZipFile(wide) as b, zipfile.ZipFile(mixed, "w") as out:
        out.writestr("metadata.json", a.read("metadata.json"))
        out.writestr("config.json", a.read("config.json"))
        out.writestr("model.weights.h5", b.read("model.weights.h5"))
    response = sqlite_team.client.post(
        "/api/models",
        files={"file": ("mixed.keras", mixed.read_bytes())},
        headers=sqlite_team.headers("alice"),
    )
    assert response.status_code == 422
    problem = response.json()["detail"][0]["msg"]
    assert problem.startswith("the stored weights do not match the config's layers"), problem
    assert "hidden" in problem and "(9, 6)" in problem and "value=[[" not in problem
