"""A worker runs TensorFlow with the threads its settings give and records them and the device."""

from __future__ import annotations

from pathlib import Path

import pytest
from worker_fixtures import (
    experiment_row,
    insert_experiment,
    migrated,
    running_worker,
    sqlite_redis_settings,
    tiny_spec,
    wait_for_status,
)

from backend.queue import CeleryQueue


def test_an_experiment_records_its_threads_and_device(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRUNELAB_TF_INTRA_OP_THREADS", "1")
    monkeypatch.setenv("PRUNELAB_TF_INTER_OP_THREADS", "1")
    settings = sqlite_redis_settings(tmp_path)
    sessions = migrated(settings)
    with running_worker(settings, tmp_path / "worker.log") as worker:
        experiment_id = insert_experiment(sessions, tiny_spec())
        CeleryQueue(settings).enqueue(experiment_id)
        wait_for_status(sessions, experiment_id, {"succeeded", "failed", "cancelled"}, 120.0, worker)
    row = experiment_row(sessions, experiment_id)
    assert row.status == "succeeded", row.error
    assert row.tf_version is not None and row.tf_version.endswith(" threads 1/1")
    assert row.keras_version is not None and " on " in row.keras_version
    assert row.keras_version.endswith((" on CPU", ")", " on GPU:0"))
