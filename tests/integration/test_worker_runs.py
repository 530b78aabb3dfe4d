"""Experiments through a real Celery worker on real Redis, recorded in a SQLite database.

One prefork worker serves the whole module (its pool child imports TensorFlow once), with TensorFlow's
thread pools set to one thread each through its settings. Each test inserts its own experiments and
enqueues them with ``CeleryQueue``, as the API does.
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from worker_fixtures import (
    REDIS_URL,
    WorkerProcess,
    cycle_rows,
    epoch_count,
    experiment_row,
    insert_experiment,
    migrated,
    running_worker,
    sqlite_redis_settings,
    tiny_spec,
    wait_for,
    wait_for_status,
)

from backend import arrays
from backend.db import session_scope
from backend.models import Artifact, Cycle, EpochRow, Experiment, LayerStatsRow
from backend.queue import EXPERIMENT_QUEUE, CeleryQueue
from backend.settings import Settings
from worker.recorder import CANCEL_POLL_SECONDS

FINISHED = {"succeeded", "failed", "cancelled"}
#: Seconds a tiny experiment may take once the worker runs it (TensorFlow's import included).
RUN_SECONDS = 90.0
#: The worker's TensorFlow thread settings (recorded with each experiment).
THREADS = {"PRUNELAB_TF_INTRA_OP_THREADS": "1", "PRUNELAB_TF_INTER_OP_THREADS": "1"}


class Lab:
    """The module's worker, database and queue."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], worker: WorkerProcess):
        self.settings = settings
        self.sessions = sessions
        self.worker = worker
        self.queue = CeleryQueue(settings)

    def submit(self, spec: dict[str, Any], **columns: Any) -> int:
        """Insert a queued experiment, commit, enqueue it (what ``POST /api/experiments`` does)."""
        experiment_id = insert_experiment(self.sessions, spec, **columns)
        self.queue.enqueue(experiment_id)
        return experiment_id

    def finished(self, experiment_id: int, timeout: float = RUN_SECONDS) -> Experiment:
        return wait_for_status(self.sessions, experiment_id, FINISHED, timeout, self.worker)

    def queue_drained(self) -> bool:
        """No message waiting and none delivered but unacknowledged."""
        client = redis.Redis.from_url(REDIS_URL)
        try:
            return client.llen(EXPERIMENT_QUEUE) == 0 and client.hlen("unacked") == 0
        finally:
            client.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    directory = tmp_path_factory.mktemp("worker-runs")
    settings = sqlite_redis_settings(directory)
    sessions = migrated(settings)
    with running_worker(settings, directory / "worker.log", env=THREADS) as worker:
        yield Lab(settings, sessions, worker)


@pytest.fixture(scope="module")
def succeeded(lab: Lab) -> int:
    """A tiny experiment run to the end (shared by the tests that inspect its records)."""
    experiment_id = lab.submit(tiny_spec())
    lab.finished(experiment_id)
    return experiment_id


def test_an_experiment_succeeds_with_every_cycle_recorded(lab: Lab, succeeded: int) -> None:
    row = experiment_row(lab.sessions, succeeded)
    assert (row.status, row.error, row.attempts) == ("succeeded", None, 1)
    assert (row.stop_reason, row.final_cycle, row.cycles_done, row.progress) == ("max_cycles", 2, 3, 1.0)
    assert row.tf_version and row.keras_version and row.worker and row.worker.startswith("w1@")

    cycles = cycle_rows(lab.sessions, succeeded)
    assert [c.index for c in cycles] == [0, 1, 2]
    assert cycles[0].widths["hidden"] == 16
    for before, after in zip(cycles, cycles[1:], strict=False):
        assert after.widths == before.widths_after  # each cycle trains the model the previous one handed on
    assert cycles[1].widths["hidden"] < 16
    assert (row.initial_params, row.final_params) == (cycles[0].params, cycles[2].params)
    assert row.final_widths == cycles[2].widths and row.metric_name == "rmse"
    assert row.final_metric == pytest.approx(cycles[2].val_metric)
    assert row.best_metric == pytest.approx(min(c.val_metric for c in cycles))

    with session_scope(lab.sessions) as session:
        epochs = session.execute(
            select(EpochRow.cycle, EpochRow.epoch).where(EpochRow.experiment_id == succeeded)
        ).all()
        layers = session.scalars(
            select(LayerStatsRow).join(Cycle).where(Cycle.experiment_id == succeeded).order_by(Cycle.index)
        ).all()
        units = [(layer.layer, layer.units) for layer in layers]
        active = [arrays.decode("active", layer.active) for layer in layers]
        histograms = [
            arrays.decode("unit_histograms", layer.unit_histograms, layer.units) for layer in layers
        ]
        stored = {
            (a.kind, a.cycle_index): (a.filename, a.size_bytes, bytes(a.content))
            for a in session.scalars(select(Artifact).where(Artifact.experiment_id == succeeded))
        }
    assert sorted(epochs) == [(c, e) for c in range(3) for e in range(2)]
    assert units == [("hidden", c.widths["hidden"]) for c in cycles]
    assert [a.shape for a in active] == [(n,) for _, n in units] and all((a >= 0).all() for a in active)
    assert all(h.shape[0] == n and h.sum() > 0 for h, (_, n) in zip(histograms, units, strict=True))
    # a trained model per cycle and the final one; the last cycle hands nothing on, so no checkpoint is left
    assert sorted(stored) == [("final", 2), ("trained", 0), ("trained", 1), ("trained", 2)]
    assert stored[("final", 2)][2] == stored[("trained", 2)][2]
    assert all(content[:2] == b"PK" and size == len(content) for _, size, content in stored.values())


def test_the_stored_final_model_loads_and_predicts(lab: Lab, succeeded: int) -> None:
    from worker.resume import model_from_bytes

    with session_scope(lab.sessions) as session:
        content = session.scalars(
            select(Artifact.content).where(Artifact.experiment_id == succeeded, Artifact.kind == "final")
        ).one()
        widths = experiment_row(lab.sessions, succeeded).final_widths

    model = model_from_bytes(content)
    x = np.array([[0.2, 0.3], [0.5, 0.1]], dtype=np.float32)

    assert widths is not None and model.get_layer("hidden").units == widths["hidden"]
    assert np.allclose(model.predict(x, verbose=0).ravel(), x.sum(axis=1), atol=0.3)


def test_an_experiment_records_its_threads_and_device(lab: Lab, succeeded: int) -> None:
    row = experiment_row(lab.sessions, succeeded)
    assert row.tf_version is not None and row.tf_version.endswith(" threads 1/1")
    assert row.keras_version is not None and " on " in row.keras_version
    assert row.keras_version.endswith((" on CPU", ")", " on GPU:0"))


def _maps(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def test_tensorflow_is_loaded_in_the_pool_child_only(lab: Lab, succeeded: int) -> None:
    children = lab.worker.children()

    assert len(children) == 1
    assert "tensorflow" in _maps(children[0])  # the child ran the experiment with TensorFlow
    assert "tensorflow" not in _maps(lab.worker.pid)  # the parent it forks from never loaded it


def test_the_worker_modules_import_without_tensorflow() -> None:
    code = (
        "import sys, backend.queue, backend.service.runs, backend.service.recording, "
        "backend.service.orphans, worker.celery_app, worker.tasks, worker.recorder; "
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]"


def test_cancelled_experiments_never_start(lab: Lab) -> None:
    # the API cancels a queued experiment at once; a request that raced the queue is settled by the worker
    cancelled_by_api = lab.submit(
        tiny_spec(), status="cancelled", cancel_requested=True, stop_reason="cancelled"
    )
    requested = lab.submit(tiny_spec(), cancel_requested=True)

    lab.finished(requested)
    wait_for(lab.queue_drained, 30, "both deliveries to be acknowledged", lab.worker)

    for experiment_id in (cancelled_by_api, requested):
        row = experiment_row(lab.sessions, experiment_id)
        assert (row.status, row.attempts, row.started_at) == ("cancelled", 0, None)
        assert epoch_count(lab.sessions, experiment_id) == 0 and cycle_rows(lab.sessions, experiment_id) == []


def test_a_running_experiment_stops_within_an_epoch_of_cancel(lab: Lab) -> None:
    spec = tiny_spec(training={"epochs": 60, "batch_size": 20}, pruning={"max_cycles": 2})
    experiment_id = lab.submit(spec)
    wait_for(lambda: epoch_count(lab.sessions, experiment_id) >= 2, RUN_SECONDS, "two epochs", lab.worker)

    with session_scope(lab.sessions) as session:
        session.get_one(Experiment, experiment_id).cancel_requested = True
        epochs_at_request = epoch_count(lab.sessions, experiment_id)
    row = lab.finished(experiment_id, timeout=30)

    with session_scope(lab.sessions) as session:
        seconds = session.scalars(
            select(EpochRow.seconds).where(EpochRow.experiment_id == experiment_id)
        ).all()
    # the recorder reads the request at most once a CANCEL_POLL_SECONDS, at an epoch's end
    allowed = 2 + math.ceil(CANCEL_POLL_SECONDS / min(seconds))
    assert (row.status, row.stop_reason, row.final_cycle) == ("cancelled", "cancelled", None)
    assert row.finished_at is not None
    assert len(seconds) - epochs_at_request <= allowed < 60
    assert cycle_rows(lab.sessions, experiment_id) == []


def test_a_duplicate_delivery_runs_the_experiment_once(lab: Lab) -> None:
    experiment_id = lab.submit(tiny_spec())
    lab.queue.enqueue(experiment_id)  # the same message again, as a broker redelivery would

    row = lab.finished(experiment_id)
    wait_for(lab.queue_drained, 30, "the second delivery to be acknowledged", lab.worker)

    assert (row.status, row.attempts) == ("succeeded", 1)
    assert experiment_row(lab.sessions, experiment_id).attempts == 1
    assert [c.index for c in cycle_rows(lab.sessions, experiment_id)] == [0, 1, 2]
    assert epoch_count(lab.sessions, experiment_id) == 6
    assert f"experiment {experiment_id} is already succeeded" in lab.worker.log_text()


def test_bad_input_fails_the_run_with_its_message_and_no_retry(lab: Lab) -> None:
    missing_file = lab.submit(
        tiny_spec(dataset={"name": "npz", "path": "no-such-file.npz", "target": "values"})
    )
    invalid_spec = lab.submit({"name": "broken", "model": "no-such-preset"})

    rows = [lab.finished(missing_file), lab.finished(invalid_spec)]
    wait_for(lab.queue_drained, 30, "both deliveries to be acknowledged", lab.worker)

    assert [(row.status, row.attempts) for row in rows] == [("failed", 1), ("failed", 1)]
    assert rows[0].error is not None and "no-such-file.npz" in rows[0].error
    assert rows[1].error is not None and rows[1].error.startswith("invalid spec:")
    assert all(epoch_count(lab.sessions, row.id) == 0 for row in rows)
