"""Presets with their costs, datasets on this server, and spec previews that create nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from servers import admin_app as create_app  # signed in as the test admin

from backend.settings import Settings
from prunespec.costs import model_cost
from prunespec.presets import preset, preset_names


def test_presets_carry_their_model_and_costs(sqlite_client: TestClient) -> None:
    presets = sqlite_client.get("/api/presets").json()

    assert [item["name"] for item in presets] == preset_names()
    lenet = next(item for item in presets if item["name"] == "lenet-5")
    cost = model_cost(preset("lenet-5"))
    assert (lenet["cost"]["params"], lenet["cost"]["flops"]) == (cost.params, cost.flops)
    assert [layer["flops"] for layer in lenet["cost"]["layers"]] == [layer.flops for layer in cost.layers]
    assert lenet["cost"]["layers"][0]["output_shape"] == [24, 24, 20]
    assert lenet["cost"]["prunable_layers"] == ["conv1", "conv2", "ip1"]
    assert lenet["model"]["input_shape"] == [28, 28, 1]
    assert "LeNet-5" in lenet["description"]


def test_preview_validates_and_costs_a_spec_without_creating_anything(
    sqlite_client: TestClient, queue: Any, spec: dict[str, Any]
) -> None:
    spec["model"] = {
        "input_shape": [784],
        "layers": [{"type": "dense", "units": 30, "activation": "relu"}, {"type": "dense", "units": 1}],
    }
    spec["dataset"] = {"name": "npz", "path": "x.npz", "target": "values"}

    response = sqlite_client.post("/api/specs/preview", json={"spec": spec})

    assert response.status_code == 200
    body = response.json()
    assert body["cost"]["params"] == 784 * 30 + 30 + 30 + 1
    assert [layer["name"] for layer in body["cost"]["layers"]] == ["dense_0", "dense_1"]
    assert body["cost"]["widths"] == {"dense_0": 30, "dense_1": 1}
    assert body["spec"]["training"]["optimizer"] == "adam"
    assert queue.ids == []
    assert sqlite_client.get("/api/experiments").json()["total"] == 0


@pytest.fixture
def isolated_data_dirs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No dataset files anywhere but where the test puts them (HOME and $PRUNELAB_DATA_DIR moved)."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PRUNELAB_DATA_DIR", raising=False)
    data_dir = tmp_path / "datasets"
    data_dir.mkdir()
    return data_dir


def test_datasets_say_which_files_this_server_finds(
    sqlite_settings: Settings, isolated_data_dirs: Path, mnist_t10k_dir: Path, queue: Any
) -> None:
    (isolated_data_dirs / "mnist").symlink_to(mnist_t10k_dir, target_is_directory=True)
    settings = sqlite_settings.model_copy(update={"data_dir": isolated_data_dirs})

    with TestClient(create_app(settings, queue)) as client:
        datasets = {item["name"]: item for item in client.get("/api/datasets").json()}

    assert datasets["sum"] == {"name": "sum", "available": True, "source": "generated"}
    assert datasets["mnist"]["available"] is True
    assert str(isolated_data_dirs / "mnist") in datasets["mnist"]["source"]
    assert datasets["fashion-mnist"] == {"name": "fashion-mnist", "available": False, "source": None}


def test_without_files_only_generated_data_is_available(
    sqlite_client: TestClient, isolated_data_dirs: Path
) -> None:
    datasets = sqlite_client.get("/api/datasets").json()

    assert [(item["name"], item["available"]) for item in datasets] == [
        ("sum", True),
        ("mnist", False),
        ("fashion-mnist", False),
    ]
