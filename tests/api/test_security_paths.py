"""Over the API a spec's dataset path stays inside the server's data directories, and a refusal tells
nothing about the file system (issue 12, "Files outside the data directory")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from backend.settings import Settings
from prunespec.datapaths import OUTSIDE_DATA_DIRS


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A readable .npz outside the data directory."""
    directory = tmp_path / "secret"
    directory.mkdir()
    zeros = np.zeros((4, 2))
    np.savez(directory / "s.npz", x_train=zeros, y_train=np.zeros(4), x_test=zeros, y_test=np.zeros(4))
    return directory / "s.npz"


def _npz(spec: dict[str, Any], path: str) -> dict[str, Any]:
    spec["model"] = {
        "input_shape": [2],
        "layers": [{"type": "dense", "units": 4}, {"type": "dense", "units": 1}],
    }
    spec["dataset"] = {"name": "npz", "path": path, "target": "values"}
    return spec


def _only_issue(response: Any) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    issues = response.json()["detail"]
    assert len(issues) == 1
    issue: dict[str, Any] = issues[0]
    return issue


def test_create_refuses_paths_outside_the_data_directory_alike_whether_they_exist_or_not(
    sqlite_client: TestClient, sqlite_settings: Settings, queue: Any, spec: dict[str, Any], secret: Path
) -> None:
    (sqlite_settings.data_dir / "link.npz").symlink_to(secret)
    raws = [str(secret), str(secret.parent / "nothing.npz"), "../secret/s.npz", "~/s.npz", "link.npz"]
    answers = []
    for raw in raws:
        response = sqlite_client.post("/api/experiments", json={"spec": _npz(spec, raw)})
        issue = _only_issue(response)
        assert (issue["field"], issue["msg"]) == ("spec.dataset.path", OUTSIDE_DATA_DIRS)
        assert issue["loc"] == ["body", "spec", "dataset", "path"]
        assert str(secret.parent) not in response.text and str(sqlite_settings.data_dir) not in response.text
        answers.append((issue["msg"], issue["type"]))
    assert len(set(answers)) == 1
    assert queue.ids == []
    assert sqlite_client.get("/api/experiments").json()["total"] == 0


def test_a_path_inside_the_data_directory_is_accepted(
    sqlite_client: TestClient, queue: Any, spec: dict[str, Any]
) -> None:
    response = sqlite_client.post("/api/experiments", json={"spec": _npz(spec, "mine/d.npz")})

    assert response.status_code == 202, response.text
    assert queue.ids == [response.json()["id"]]


def test_preview_and_yaml_parse_refuse_an_outside_path(
    sqlite_client: TestClient, spec: dict[str, Any], secret: Path
) -> None:
    preview = sqlite_client.post("/api/specs/preview", json={"spec": _npz(spec, str(secret))})
    text = f"name: x\nmodel: sum-mlp\ndataset: {{name: npz, path: '{secret}', target: values}}\n"
    parsed = sqlite_client.post("/api/specs/parse", content=text, headers={"Content-Type": "text/yaml"})

    for response in (preview, parsed):
        issue = _only_issue(response)
        assert (issue["field"], issue["msg"]) == ("spec.dataset.path", OUTSIDE_DATA_DIRS)
        assert str(secret) not in response.text


def test_rerun_refuses_a_stored_spec_whose_path_leaves_the_data_directory(
    sqlite_client: TestClient, sqlite_rows: Any, queue: Any, spec: dict[str, Any], secret: Path
) -> None:
    stored = sqlite_rows.experiment(spec=_npz(spec, str(secret)), status="succeeded")

    response = sqlite_client.post(f"/api/experiments/{stored}/rerun", json={})

    issue = _only_issue(response)
    assert (issue["field"], issue["msg"]) == ("spec.dataset.path", OUTSIDE_DATA_DIRS)
    assert str(secret) not in response.text
    assert queue.ids == []
