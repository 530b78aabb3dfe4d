"""``prunelab submit --model/--data`` and ``prunelab models|datasets list|upload`` against a live server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi import FastAPI
from servers import LiveServer, live_server
from uploads_files import small_dense_keras, tiny_npz

from backend.cli import main


@pytest.fixture
def server(sqlite_app: FastAPI) -> Iterator[LiveServer]:
    with live_server(sqlite_app) as running:
        yield running


def test_submit_uploads_the_model_and_data_then_submits_a_spec_naming_them(
    server: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = small_dense_keras(tmp_path / "mine.keras")
    data = tmp_path / "mine.npz"
    data.write_bytes(tiny_npz())
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "byo",
                "dataset": {"name": "sum", "train_samples": 12},
                "training": {"loss": "crossentropy"},
            }
        )
    )
    url = ["--server", server.url]

    assert main(["submit", str(spec), "--model", str(model), "--data", str(data), *url]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("model 1: mine.keras: input (4,)") and "prunable: hidden" in out[0]
    assert out[1].startswith("dataset 2: mine.npz: 18 train / 6 test") and out[1].endswith("3 classes")
    assert out[2] == f"submitted experiment 1: {server.url}/experiments/1"

    assert main(["models", "upload", str(model), *url]) == 0
    assert capsys.readouterr().out.startswith("model 1: mine.keras (already stored)")
    assert main(["datasets", "list", *url]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].split()[:3] == ["id", "name", "owner"] and listing[1].split()[:2] == ["2", "mine.npz"]


def test_a_refused_upload_exits_2_with_the_servers_reason(
    server: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.keras"
    empty.write_bytes(b"")
    assert main(["models", "upload", str(empty), "--server", server.url]) == 2
    assert "empty (0 bytes)" in capsys.readouterr().err
