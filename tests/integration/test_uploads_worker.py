"""Bring your own model and data (issue 16), end to end through the real worker: a trained LeNet-5-like
.keras and the MNIST t10k IDX files are uploaded over the API, pruned from the uploaded weights, and the
final model downloads and loads in plain Keras."""

from __future__ import annotations

import io
import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from servers import admin_app
from uploads_files import lenet5_keras
from worker_fixtures import running_worker, sqlite_redis_settings, wait_for_status

from backend.db import make_engine, make_session_factory
from backend.migrate import upgrade_to_head
from backend.queue import CeleryQueue

IMAGES = "t10k-images-idx3-ubyte.gz"
LABELS = "t10k-labels-idx1-ubyte.gz"


@pytest.fixture
def mnist(mnist_t10k_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The t10k images in [0, 1] (n, 28, 28, 1) and their labels, read from the shared copy (the
    ``mnist_t10k_dir`` fixture fails the test when the files are missing: tests never download)."""
    from worker.engine.data.idx import read_idx_images, read_idx_labels

    x = read_idx_images(mnist_t10k_dir / IMAGES).astype(np.float32)
    x = (x / 255.0 if x.max() > 1 else x).reshape(-1, 28, 28, 1)
    return x, read_idx_labels(mnist_t10k_dir / LABELS).astype(np.int64)


def _spec(model_id: int, data_id: int, **training: Any) -> dict[str, Any]:
    return {
        "name": "uploaded-lenet",
        "seed": 3,
        "model": {"uploaded": model_id, "weights": "trained"},
        "dataset": {"name": "npz", "id": data_id, "train_samples": 600, "test_samples": 300},
        "training": {"loss": "crossentropy", "epochs": 1, "batch_size": 100, **training},
        "pruning": {"criterion": {"type": "apoz", "k": 0.0}, "max_cycles": 2, "stats_samples": 200},
        "benchmark": {"cycles": "none"},
    }


def test_an_uploaded_lenet_prunes_from_its_weights_and_the_final_model_loads_in_keras(
    tmp_path: Path, mnist: tuple[np.ndarray, np.ndarray], mnist_t10k_dir: Path
) -> None:
    import keras

    x, y = mnist
    settings = sqlite_redis_settings(tmp_path / "data")
    settings.data_dir.mkdir()
    upgrade_to_head(settings)
    sessions = make_session_factory(make_engine(settings))
    model_file = lenet5_keras(tmp_path / "lenet.keras", x[:2000], y[:2000])
    trained = keras.saving.load_model(model_file)
    cut = x.shape[0] - x.shape[0] // 6  # the server keeps the last sixth of one IDX pair for testing
    x_test, y_test = x[cut:][:300], y[cut:][:300]
    expected = float(np.mean(np.argmax(trained.predict(x_test, verbose=0), axis=1) == y_test))

    with TestClient(admin_app(settings, CeleryQueue(settings))) as client:
        model = client.post("/api/models", files={"file": ("lenet.keras", model_file.read_bytes())})
        assert model.status_code == 201, model.text
        assert model.json()["summary"]["prunable"] == ["conv1", "conv2", "fc1"]
        data = client.post(
            "/api/datasets",
            files=[
                ("file", (IMAGES, (mnist_t10k_dir / IMAGES).read_bytes())),
                ("file", (LABELS, (mnist_t10k_dir / LABELS).read_bytes())),
            ],
        )
        assert data.status_code == 201, data.text
        assert data.json()["summary"]["classes"] == 10
        assert data.json()["summary"]["test_examples"] == x.shape[0] - cut
        # learning rate ~0: cycle 0 measures the uploaded weights themselves
        created = client.post(
            "/api/experiments",
            json={"spec": _spec(model.json()["id"], data.json()["id"], learning_rate=1e-12)},
        )
        assert created.status_code == 202, created.text
        experiment_id = created.json()["id"]

        with running_worker(settings, tmp_path / "worker.log") as worker:
            row = wait_for_status(sessions, experiment_id, {"succeeded", "failed", "cancelled"}, 300, worker)
        assert (row.status, row.error) == ("succeeded", None)

        cycles = client.get(f"/api/experiments/{experiment_id}/cycles").json()
        assert math.isclose(cycles[0]["val_metric"], expected, abs_tol=1e-6)
        assert sum(cycles[-1]["widths"].values()) < sum(cycles[0]["widths"].values())
        artifacts = client.get(f"/api/experiments/{experiment_id}/artifacts").json()
        final = next(a for a in artifacts if a["kind"] == "final")
        content = client.get(f"/api/artifacts/{final['id']}").content
        assert client.delete(f"/api/models/{model.json()['id']}").status_code == 409

    with zipfile.ZipFile(io.BytesIO(content)):
        pass
    (tmp_path / "final.keras").write_bytes(content)
    loaded = keras.saving.load_model(tmp_path / "final.keras", safe_mode=True)
    assert loaded.predict(x_test[:5], verbose=0).shape == (5, 10)


def test_a_worker_refuses_an_upload_whose_bytes_changed_after_submit(tmp_path: Path) -> None:
    from sqlalchemy import update
    from uploads_files import tiny_npz

    from backend.db import session_scope
    from backend.models import Project, Upload
    from backend.settings import Settings
    from prunespec.spec import NpzDataset
    from worker.uploaded import UploadUnusable, uploaded_dataset

    settings = Settings(data_dir=tmp_path, broker_url="memory://")
    upgrade_to_head(settings)
    sessions = make_session_factory(make_engine(settings))
    content = tiny_npz()
    import hashlib

    sha = hashlib.sha256(content).hexdigest()
    with session_scope(sessions) as session:
        assert session.get(Project, 1) is not None
        row = Upload(
            kind="dataset",
            name="d",
            notes="",
            filename="d.npz",
            size_bytes=len(content),
            sha256=sha,
            content=content,
            summary={},
            project_id=1,
            owner="test",
        )
        session.add(row)
        session.flush()
        upload_id = row.id
    spec = NpzDataset(id=upload_id, sha256=sha, train_samples=10)
    data = uploaded_dataset(sessions, spec, seed=0)
    assert data.x_train.shape == (10, 4) and "uploaded data set" in data.description

    with session_scope(sessions) as session:
        session.execute(
            update(Upload)
            .where(Upload.id == upload_id)
            .values(content=content[:-1] + bytes([content[-1] ^ 1]))
        )
    with pytest.raises(UploadUnusable, match="SHA-256 mismatch"):
        uploaded_dataset(sessions, spec, seed=0)
