"""A real ``prunelab run`` directory pushed to a live server joins the history with the engine's numbers."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import yaml
from servers import RecordingQueue, admin_token, live_server

from backend.app import create_app
from backend.cli import main
from backend.migrate import upgrade_to_head
from backend.settings import Settings

TINY_SPEC = {
    "name": "pushed tiny sum",
    "seed": 1,
    "model": {
        "input_shape": [2],
        "layers": [
            {"type": "dense", "name": "hidden", "units": 16, "activation": "relu"},
            {"type": "dense", "name": "out", "units": 1},
        ],
    },
    "dataset": {"name": "sum", "train_samples": 1000, "test_samples": 200},
    "training": {"optimizer": "adam", "learning_rate": 0.01, "batch_size": 200, "epochs": 1},
    "pruning": {"criterion": {"type": "apoz", "k": 0}, "max_cycles": 2},
}


def test_a_local_run_pushed_to_a_server_keeps_its_cycles_numbers_and_model(
    sqlite_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump(TINY_SPEC))
    out = tmp_path / "run"
    assert main(["run", str(spec), "--out", str(out), "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())
    final = results["cycles"][results["final_index"]]

    upgrade_to_head(sqlite_settings)
    app = create_app(sqlite_settings, RecordingQueue())
    token = admin_token(app, "pusher")
    with live_server(app) as server:
        # ``--token=``: a random token may begin with "-", which argparse would take for an option
        assert main(["push", str(out), "--server", server.url, f"--token={token}"]) == 0
        printed = capsys.readouterr().out
        assert "uploaded final.keras" in printed
        signed = {"Authorization": f"Bearer {token}"}
        detail = httpx.get(f"{server.url}/api/experiments/1", headers=signed).json()
        artifacts = httpx.get(f"{server.url}/api/experiments/1/artifacts", headers=signed).json()
        epochs = httpx.get(f"{server.url}/api/experiments/1/epochs", headers=signed).json()

    assert detail["status"] == "succeeded" and detail["stop_reason"] == results["stop_reason"]
    assert detail["name"] == "pushed tiny sum" and "local-run" in detail["tags"]
    assert detail["final_cycle"] == final["index"] and detail["final_widths"] == final["widths"]
    assert (detail["final_params"], detail["final_flops"]) == (final["params"], final["flops"])
    assert [c["params"] for c in detail["cycles"]] == [c["params"] for c in results["cycles"]]
    assert len(epochs) == sum(len(c["epochs"]) for c in results["cycles"])
    model = next(a for a in artifacts if a["kind"] == "final")
    assert model["size_bytes"] == (out / "final.keras").stat().st_size
