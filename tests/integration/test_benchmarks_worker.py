"""TFLite benchmarks and crossover runs through a real Celery worker on real Redis, read through the API.

One prefork worker serves the module; the experiments are submitted together when the module starts
(the worker runs them one after another) and each test waits for its own. Nothing is timed against a
bound: the tests check what was stored, not how fast it ran.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from servers import admin_app as create_app  # signed in as the test admin
from servers import live_server
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import StarletteDeprecationWarning
from worker_fixtures import (
    WorkerProcess,
    cycle_rows,
    experiment_row,
    insert_experiment,
    migrated,
    running_worker,
    sqlite_redis_settings,
    tiny_spec,
    wait_for,
    wait_for_status,
)

from backend.cli import main
from backend.db import session_scope
from backend.models import Artifact, Experiment, utcnow
from backend.queue import CeleryQueue
from backend.settings import Settings

with warnings.catch_warnings():
    # Starlette asks for httpx2; the installed httpx works and nothing else is offered here.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

FINISHED = {"succeeded", "failed", "cancelled"}
#: Seconds an experiment may take once submitted (the worker runs the module's experiments in turn).
RUN_SECONDS = 120.0


def spec_with(benchmark: dict[str, Any], **sections: dict[str, Any]) -> dict[str, Any]:
    """The worker tests' tiny experiment with 2 cycles and a ``benchmark`` section."""
    spec = tiny_spec(pruning={"max_cycles": 2}, **sections)
    spec["benchmark"] = {"runs": 30, "warmup": 3, **benchmark}
    return spec


def write_sum_npz(path: Path) -> Path:
    """A .npz summation data set (x1 + x2), so that a test can take the data away later."""
    rng = np.random.default_rng(5)
    x_train, x_test = rng.random((2000, 2), dtype=np.float32), rng.random((500, 2), dtype=np.float32)
    np.savez(path, x_train=x_train, y_train=x_train.sum(1), x_test=x_test, y_test=x_test.sum(1))
    return path


@dataclass
class Lab:
    settings: Settings
    sessions: sessionmaker[Session]
    worker: WorkerProcess
    api: TestClient
    npz: Path
    every: int  # benchmark.cycles every, float32 + int8_dynamic
    npz_run: int  # npz data set, first_last, float32 + int8_full
    unbenchmarked: int  # benchmark.cycles none
    cli_target: int  # benchmark.cycles none, benchmarked by ``prunelab bench --experiment``

    def finished(self, experiment_id: int) -> Experiment:
        return wait_for_status(self.sessions, experiment_id, FINISHED, RUN_SECONDS, self.worker)

    def benchmarks(self, experiment_id: int) -> dict[str, Any]:
        response = self.api.get(f"/api/experiments/{experiment_id}/benchmarks")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    directory = tmp_path_factory.mktemp("benchmarks")
    settings = sqlite_redis_settings(directory)
    sessions = migrated(settings)
    queue = CeleryQueue(settings)
    npz = write_sum_npz(directory / "sum.npz")
    with (
        running_worker(settings, directory / "worker.log") as worker,
        TestClient(create_app(settings)) as api,
    ):
        ids = []
        for spec in (
            spec_with({"cycles": "every", "formats": ["float32", "int8_dynamic"]}),
            spec_with(
                {"cycles": "first_last", "formats": ["float32", "int8_full"]},
                dataset={"name": "npz", "path": npz.name, "target": "values"},  # in the data directory
            ),
            spec_with({"cycles": "none"}),
            spec_with({"cycles": "none"}),
        ):
            ids.append(insert_experiment(sessions, spec))
            queue.enqueue(ids[-1])
        yield Lab(settings, sessions, worker, api, npz, *ids)


def test_every_cycle_is_benchmarked_in_each_format_and_downloadable(lab: Lab) -> None:
    row = lab.finished(lab.every)

    assert (row.status, row.error, row.cycles_done) == ("succeeded", None, 2)
    assert "stage" not in row.progress_detail
    body = lab.benchmarks(lab.every)
    assert [(r["cycle_index"], r["format"], r["status"]) for r in body["rows"]] == [
        (0, "float32", "ok"),
        (0, "int8_dynamic", "ok"),
        (1, "float32", "ok"),
        (1, "int8_dynamic", "ok"),
    ]
    for bench in body["rows"]:
        assert bench["runs"] == 30 and bench["latency_median_us"] > 0 and bench["total_bits"] > 0
        assert bench["keras_metric"] is not None and bench["tflite_metric"] is not None
        download = lab.api.get(bench["artifact_url"])
        assert download.status_code == 200
        assert len(download.content) == bench["model_bytes"] and download.content[4:8] == b"TFL3"
    assert row.latency_speedup is not None and row.latency_speedup > 0
    assert body["latency_speedup"] == pytest.approx(row.latency_speedup)
    cycles = cycle_rows(lab.sessions, lab.every)
    compared = {entry["cycle_index"]: entry for entry in body["cycles"]}
    assert compared[0]["flops_reduction"] == 1.0 and compared[0]["speedup"]["float32"] == 1.0
    assert compared[1]["flops_reduction"] == pytest.approx(cycles[0].flops / cycles[1].flops)
    assert compared[1]["flops_reduction"] > 1.0  # the tiny net lost hidden units in cycle 0
    assert compared[1]["speedup"]["int8_dynamic"] > 0
    listed = lab.api.get(f"/api/experiments/{lab.every}/artifacts").json()
    assert sorted(a["filename"] for a in listed if a["kind"] == "tflite") == [
        "cycle-0-float32.tflite",
        "cycle-0-int8_dynamic.tflite",
        "cycle-1-float32.tflite",
        "cycle-1-int8_dynamic.tflite",
    ]


def test_a_rerun_without_the_training_data_records_the_failure_and_keeps_the_experiment(lab: Lab) -> None:
    first = lab.finished(lab.npz_run)
    assert first.status == "succeeded"
    before = lab.benchmarks(lab.npz_run)
    assert [(r["cycle_index"], r["format"], r["status"]) for r in before["rows"]] == [
        (0, "float32", "ok"),
        (0, "int8_full", "ok"),  # calibrated on the experiment's training inputs
        (1, "float32", "ok"),
        (1, "int8_full", "ok"),
    ]
    lab.npz.unlink()  # int8_full can no longer be calibrated, nor fidelity measured
    asked = utcnow()

    response = lab.api.post(f"/api/experiments/{lab.npz_run}/benchmarks", json={"cycles": "every"})

    assert response.status_code == 202
    after = wait_for(
        lambda: (
            (body := lab.benchmarks(lab.npz_run))["rows"]
            and all(r["created_at"] > asked.isoformat() for r in body["rows"])
            and not body["benchmarking"]
            and body
        ),
        RUN_SECONDS,
        "the benchmarks to be replaced",
        lab.worker,
    )
    statuses = {(r["cycle_index"], r["format"]): r for r in after["rows"]}
    assert sorted(statuses) == [(0, "float32"), (0, "int8_full"), (1, "float32"), (1, "int8_full")]
    for cycle in (0, 1):
        failed, timed = statuses[(cycle, "int8_full")], statuses[(cycle, "float32")]
        assert (failed["status"], failed["artifact_url"]) == ("failed", None)
        assert "representative inputs" in failed["error"] and "sum.npz" in failed["error"]
        assert timed["status"] == "ok" and timed["latency_median_us"] > 0
        assert timed["keras_metric"] is None  # no test data: no fidelity
    row = experiment_row(lab.sessions, lab.npz_run)
    assert (row.status, row.error) == ("succeeded", None)
    assert row.latency_speedup is not None


def test_spec_without_benchmarks_has_none_then_a_redelivery_after_the_last_cycle_benchmarks(
    lab: Lab,
) -> None:
    row = lab.finished(lab.unbenchmarked)
    assert row.status == "succeeded" and row.latency_speedup is None
    assert lab.benchmarks(lab.unbenchmarked)["rows"] == []
    # the state a worker leaves when it dies after recording the last cycle, before benchmarking
    with session_scope(lab.sessions) as session:
        experiment = session.get_one(Experiment, lab.unbenchmarked)
        experiment.spec = {**experiment.spec, "benchmark": {"cycles": "first_last", "runs": 10, "warmup": 1}}
        experiment.status, experiment.finished_at, experiment.stop_reason = "running", None, None
        experiment.heartbeat_at = utcnow() - timedelta(hours=1)
        session.execute(
            delete(Artifact).where(Artifact.experiment_id == lab.unbenchmarked, Artifact.kind == "final")
        )

    CeleryQueue(lab.settings).enqueue(lab.unbenchmarked)  # the broker's redelivery
    wait_for(
        lambda: experiment_row(lab.sessions, lab.unbenchmarked).status == "succeeded",
        RUN_SECONDS,
        "the redelivered experiment to finish",
        lab.worker,
    )

    row = experiment_row(lab.sessions, lab.unbenchmarked)
    assert (row.attempts, row.stop_reason, row.final_cycle) == (2, "max_cycles", 1)
    assert row.latency_speedup is not None
    body = lab.benchmarks(lab.unbenchmarked)
    assert [(r["cycle_index"], r["format"], r["status"]) for r in body["rows"]] == [
        (0, "float32", "ok"),
        (1, "float32", "ok"),
    ]
    with session_scope(lab.sessions) as session:
        finals = session.scalars(
            select(Artifact.cycle_index).where(Artifact.experiment_id == row.id, Artifact.kind == "final")
        ).all()
    assert finals == [1]
    assert f"experiment {row.id}: finish" in lab.worker.log_text()


def test_prunelab_crossover_on_the_server_stores_the_timings_and_crossover(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["crossover", "--rows", "32", "--cols", "16", "--densities", "1", "0.1", "0.5"]

    with live_server(create_app(lab.settings)) as server:
        url = server.url
        code = main([*argv, "--runs", "20", "--warmup", "2", "--server", url])

    out = capsys.readouterr().out
    assert code == 0, out
    (run,) = lab.api.get("/api/crossover").json()
    assert out.startswith(f"queued crossover run {run['id']}: ")
    assert (run["status"], run["error"]) == ("succeeded", None), run
    assert run["worker"] and run["worker"].startswith("w1@")
    assert sorted(run["timings"]) == ["litert", "tensorflow"] == sorted(run["crossover"])
    for backend, points in run["timings"].items():
        assert [p["density"] for p in points] == [0.1, 0.5, 1.0]
        assert [p["nonzeros"] for p in points] == [51, 256, 512]
        assert all(p["dense_us"] > 0 and p["sparse_us"] > 0 and p["speedup"] > 0 for p in points)
        fastest = [p["density"] for p in points if p["speedup"] > 1.05]
        assert run["crossover"][backend] == (max(fastest) if fastest else None)
        assert f"{backend}: crossover " in out
    assert all(p["sparse_bytes"] > 0 for p in run["timings"]["litert"])


def test_prunelab_bench_experiment_stores_rows_as_the_worker_would(
    lab: Lab, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert lab.finished(lab.cli_target).status == "succeeded"
    monkeypatch.setenv("PRUNELAB_DATABASE_URL", lab.settings.database_url)
    monkeypatch.setenv("PRUNELAB_DATA_DIR", str(lab.settings.data_dir))

    code = main(["bench", "--experiment", str(lab.cli_target), "--cycles", "every", "--runs", "5"])

    out = capsys.readouterr().out
    assert code == 0, out
    assert [line.split()[:3] for line in out.splitlines()[1:3]] == [
        ["0", "float32", "ok"],
        ["1", "float32", "ok"],
    ]
    body = lab.benchmarks(lab.cli_target)
    assert [(r["cycle_index"], r["format"], r["runs"]) for r in body["rows"]] == [
        (0, "float32", 5),
        (1, "float32", 5),
    ]
    assert body["latency_speedup"] is not None and "float32 speed-up of cycle 1 over cycle 0" in out
    assert main(["bench", "--experiment", "999"]) == 2
    assert "experiment 999 does not exist" in capsys.readouterr().err


def test_the_new_modules_import_without_tensorflow() -> None:
    code = (
        "import sys, backend.cli, backend.api.benchmarks, backend.service.benchmarks, "
        "backend.service.crossover, worker.tasks, worker.bench_cli, worker.crossover; "
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]"
