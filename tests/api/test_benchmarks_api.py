"""TFLite benchmark and crossover endpoints, on hand-made rows: reading, re-running, queueing, validation."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from servers import admin_app as create_app  # signed in as the test admin
from sqlalchemy import func, select

from backend.db import session_scope
from backend.models import Artifact, CrossoverRun, Experiment, Status, TFLiteBenchmark
from backend.settings import Settings

BENCHMARK_TASK = "prunelab.benchmark_experiment"
CROSSOVER_TASK = "prunelab.crossover"


@dataclass
class TaskQueue:
    """A queue double that records experiments and named tasks (or raises ``error`` for tasks)."""

    ids: list[int] = field(default_factory=list)
    sent: list[tuple[Any, ...]] = field(default_factory=list)
    error: Exception | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def enqueue(self, experiment_id: int) -> None:
        with self._lock:
            self.ids.append(experiment_id)

    def send(self, task: str, *args: Any) -> None:
        if self.error is not None:
            raise self.error
        with self._lock:
            self.sent.append((task, *args))


@pytest.fixture
def queue() -> TaskQueue:
    """Replaces the API fixtures' queue: ``app``, ``client`` and ``rows`` use this one."""
    return TaskQueue()


@pytest.fixture
def tasks(queue: TaskQueue) -> TaskQueue:
    return queue


@pytest.fixture
def bench_app(app: FastAPI) -> FastAPI:
    """The app on the parametrised database (SQLite and PostgreSQL) with a queue that sends tasks."""
    return app


@pytest.fixture
def api(client: TestClient) -> TestClient:
    return client


@pytest.fixture
def made(rows: Any) -> Any:
    return rows


def add_benchmark(rows: Any, experiment_id: int, cycle: int, fmt: str, **values: Any) -> int:
    """A benchmark row (``ok`` with a stored ``.tflite`` unless ``status`` says otherwise)."""
    artifact_id = None
    if values.get("status", "ok") == "ok":
        content = f"tflite {cycle} {fmt}".encode()
        artifact_id = rows.artifact(
            experiment_id,
            content,
            f"cycle-{cycle}-{fmt}.tflite",
            kind="tflite",
            cycle_index=cycle,
            media_type="application/x-tflite",
        )
    with session_scope(rows.sessions) as session:
        row = TFLiteBenchmark(
            experiment_id=experiment_id,
            cycle_index=cycle,
            format=fmt,
            status=values.pop("status", "ok"),
            threads=1,
            runs=200,
            artifact_id=artifact_id,
            **values,
        )
        session.add(row)
        session.flush()
        return row.id


def count(app: FastAPI, model: Any) -> int:
    with session_scope(app.state.context.session_factory) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


# --------------------------------------------------------------------------------------------- reading


def test_benchmarks_pair_flops_reduction_with_speedup_per_cycle(api: TestClient, made: Any) -> None:
    experiment_id = made.experiment(status="succeeded", final_cycle=2, latency_speedup=1.9)
    for index, hidden in ((0, 1000), (1, 500), (2, 250)):
        made.cycle(experiment_id, index, {"hidden": hidden, "out": 1})  # flops 20 x hidden, params 10 x
    add_benchmark(
        made, experiment_id, 0, "float32", latency_median_us=100.0, total_bits=320_000, model_bytes=40
    )
    add_benchmark(made, experiment_id, 0, "int8_dynamic", latency_median_us=80.0, total_bits=100_000)
    add_benchmark(
        made, experiment_id, 2, "float32", latency_median_us=50.0, total_bits=80_000, model_bytes=10
    )
    add_benchmark(made, experiment_id, 2, "int8_dynamic", status="failed", error="cannot convert: Erfinv")

    response = api.get(f"/api/experiments/{experiment_id}/benchmarks")

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["benchmarking"], body["final_cycle"]) == ("succeeded", False, 2)
    assert (body["baseline_cycle"], body["latency_speedup"]) == (0, 1.9)
    assert [(r["cycle_index"], r["format"], r["status"]) for r in body["rows"]] == [
        (0, "float32", "ok"),
        (0, "int8_dynamic", "ok"),
        (2, "float32", "ok"),
        (2, "int8_dynamic", "failed"),
    ]
    failed = body["rows"][3]
    assert (failed["error"], failed["artifact_id"], failed["artifact_url"]) == (
        "cannot convert: Erfinv",
        None,
        None,
    )
    cycles = {entry["cycle_index"]: entry for entry in body["cycles"]}
    assert sorted(cycles) == [0, 2]  # cycle 1 was not benchmarked
    assert cycles[0]["flops_reduction"] == 1.0 and cycles[0]["speedup"] == {
        "float32": 1.0,
        "int8_dynamic": 1.0,
    }
    assert cycles[2]["flops_reduction"] == pytest.approx(4.0)
    assert cycles[2]["speedup"] == {"float32": pytest.approx(2.0), "int8_dynamic": None}
    assert cycles[2]["latency_median_us"] == {"float32": 50.0, "int8_dynamic": None}
    assert cycles[2]["bits"] == {"float32": 80_000, "int8_dynamic": None}
    assert cycles[2]["bits_per_param"]["float32"] == pytest.approx(80_000 / 2500)

    download = api.get(body["rows"][2]["artifact_url"])
    assert download.status_code == 200
    assert download.content == b"tflite 2 float32"
    assert download.headers["content-type"] == "application/x-tflite"
    assert download.headers["etag"] == f'"{hashlib.sha256(b"tflite 2 float32").hexdigest()}"'
    assert 'filename="cycle-2-float32.tflite"' in download.headers["content-disposition"]


def test_the_first_benchmarked_cycle_is_the_baseline_without_cycle_0(api: TestClient, made: Any) -> None:
    experiment_id = made.experiment(status="succeeded")
    for index, hidden in ((0, 1000), (1, 500), (2, 100)):
        made.cycle(experiment_id, index, {"hidden": hidden, "out": 1})
    add_benchmark(made, experiment_id, 1, "float32", latency_median_us=90.0)
    add_benchmark(made, experiment_id, 2, "float32", latency_median_us=30.0)

    body = api.get(f"/api/experiments/{experiment_id}/benchmarks").json()

    assert body["baseline_cycle"] == 1
    assert [(c["cycle_index"], c["flops_reduction"]) for c in body["cycles"]] == [(1, 1.0), (2, 5.0)]
    assert body["cycles"][1]["speedup"]["float32"] == pytest.approx(3.0)


def test_an_experiment_without_benchmarks_has_empty_lists(api: TestClient, made: Any) -> None:
    experiment_id = made.experiment(status="running", progress_detail={"stage": "benchmarking", "cycle": 1})
    made.cycle(experiment_id, 0)

    body = api.get(f"/api/experiments/{experiment_id}/benchmarks").json()

    assert (body["rows"], body["cycles"], body["baseline_cycle"]) == ([], [], None)
    assert body["benchmarking"] is True and body["latency_speedup"] is None


def test_benchmarks_of_an_unknown_experiment_are_404(api: TestClient) -> None:
    response = api.get("/api/experiments/999/benchmarks")
    assert (response.status_code, response.json()["code"]) == (404, "not_found")


# --------------------------------------------------------------------------------------------- re-running


@pytest.mark.parametrize(
    ("spec_cycles", "body", "expected"),
    [
        (None, None, "first_last"),
        ("every", None, "every"),
        ("none", None, "first_last"),
        ("first_last", {"cycles": "every"}, "every"),
        ("every", {"cycles": "first_last"}, "first_last"),
    ],
)
def test_rerunning_benchmarks_queues_the_task_with_the_cycles(
    api: TestClient,
    made: Any,
    tasks: TaskQueue,
    spec: dict[str, Any],
    spec_cycles: str | None,
    body: Any,
    expected: str,
) -> None:
    spec = {**spec, "model": {"preset": "sum-mlp"}}
    if spec_cycles is not None:
        spec["benchmark"] = {"cycles": spec_cycles}
    experiment_id = made.experiment(status="succeeded", spec=spec)

    json_type = {"Content-Type": "application/json"}  # also when there is no body
    response = api.post(f"/api/experiments/{experiment_id}/benchmarks", json=body, headers=json_type)

    assert response.status_code == 202
    answer = response.json()
    assert answer == {
        "experiment_id": experiment_id,
        "cycles": expected,
        "status": "queued",
        "url": f"/api/experiments/{experiment_id}/benchmarks",
    }
    assert response.headers["location"] == answer["url"]
    assert tasks.sent == [(BENCHMARK_TASK, experiment_id, expected)]
    assert tasks.ids == []  # the experiment itself is not run again


@pytest.mark.parametrize("status", [Status.queued, Status.running, Status.failed, Status.cancelled])
def test_only_a_succeeded_experiment_is_benchmarked_again(
    api: TestClient, made: Any, tasks: TaskQueue, status: Status
) -> None:
    experiment_id = made.experiment(status=status.value)

    response = api.post(f"/api/experiments/{experiment_id}/benchmarks", json={})

    assert response.status_code == 409
    assert response.json()["code"] == "conflict"
    assert status.value in response.json()["detail"]
    assert tasks.sent == []


def test_rerunning_benchmarks_of_an_unknown_experiment_is_404(api: TestClient, tasks: TaskQueue) -> None:
    response = api.post("/api/experiments/4242/benchmarks", json={})
    assert response.status_code == 404
    assert tasks.sent == []


def test_an_unknown_cycles_choice_is_422_naming_the_field(
    api: TestClient, made: Any, tasks: TaskQueue
) -> None:
    experiment_id = made.experiment(status="succeeded")

    response = api.post(f"/api/experiments/{experiment_id}/benchmarks", json={"cycles": "some"})

    assert response.status_code == 422
    assert [issue["loc"] for issue in response.json()["detail"]] == [["body", "cycles"]]
    assert tasks.sent == []


def test_a_refused_benchmark_task_is_503(api: TestClient, made: Any, tasks: TaskQueue) -> None:
    experiment_id = made.experiment(status="succeeded")
    tasks.error = ConnectionError("broker down")

    response = api.post(f"/api/experiments/{experiment_id}/benchmarks", json={})

    assert response.status_code == 503
    assert "broker down" in response.json()["detail"]


class ExperimentsOnly:
    """A queue that can run experiments and nothing else."""

    def enqueue(self, experiment_id: int) -> None:
        raise AssertionError("nothing should be enqueued")


def test_a_queue_that_only_runs_experiments_cannot_queue_benchmarks(sqlite_settings: Settings) -> None:
    with TestClient(create_app(sqlite_settings, ExperimentsOnly())) as client:
        response = client.post("/api/experiments/1/benchmarks", json={})

    assert response.status_code == 503
    assert "cannot send" in response.json()["detail"]


# --------------------------------------------------------------------------------------------- crossover


def test_a_crossover_run_is_saved_then_queued_by_id(
    bench_app: FastAPI, api: TestClient, tasks: TaskQueue
) -> None:
    body = {"rows": 784, "cols": 300, "densities": [0.5, 0.01, 0.5, 1.0], "runs": 50}

    response = api.post("/api/crossover", json=body)

    assert response.status_code == 202
    created = response.json()
    assert created["status"] == "queued" and created["url"] == f"/api/crossover/{created['id']}"
    assert response.headers["location"] == created["url"]
    assert tasks.sent == [(CROSSOVER_TASK, created["id"])]
    run = api.get(created["url"]).json()
    assert (run["rows"], run["cols"], run["batch"], run["runs"], run["warmup"]) == (784, 300, 1, 50, 20)
    assert run["densities"] == [0.01, 0.5, 1.0]  # sorted, duplicates dropped
    assert run["backends"] == ["tensorflow", "litert"]
    assert (run["status"], run["timings"], run["crossover"], run["error"]) == ("queued", {}, {}, None)
    assert count(bench_app, CrossoverRun) == 1


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        pytest.param({"rows": 0, "cols": 10}, ["body", "rows"], id="rows-zero"),
        pytest.param({"cols": 10}, ["body", "rows"], id="rows-missing"),
        pytest.param({"rows": 8192, "cols": 8192}, ["body", "cols"], id="too-many-weights"),
        pytest.param({"rows": 8, "cols": 8, "batch": 0}, ["body", "batch"], id="batch-zero"),
        pytest.param({"rows": 8, "cols": 8, "batch": 5000}, ["body", "batch"], id="batch-large"),
        pytest.param({"rows": 8, "cols": 8, "densities": []}, ["body", "densities"], id="no-densities"),
        pytest.param(
            {"rows": 8, "cols": 8, "densities": [0.1, 0.0]}, ["body", "densities", 1], id="density-0"
        ),
        pytest.param({"rows": 8, "cols": 8, "densities": [1.5]}, ["body", "densities", 0], id="density-150%"),
        pytest.param(
            {"rows": 8, "cols": 8, "densities": [0.01] * 25}, ["body", "densities"], id="densities-25"
        ),
        pytest.param({"rows": 8, "cols": 8, "backends": ["cuda"]}, ["body", "backends", 0], id="backend"),
        pytest.param({"rows": 10, "cols": 8, "block_rows": 4}, ["body", "block_rows"], id="block-rows"),
        pytest.param({"rows": 8, "cols": 8, "runs": 0}, ["body", "runs"], id="runs-zero"),
        pytest.param({"rows": 8, "cols": 8, "threads": 65}, ["body", "threads"], id="threads"),
        pytest.param({"rows": 8, "cols": 8, "shape": [1, 2]}, ["body", "shape"], id="unknown-field"),
    ],
)
def test_an_invalid_crossover_run_is_422_naming_the_field(
    bench_app: FastAPI, api: TestClient, tasks: TaskQueue, body: dict[str, Any], loc: list[Any]
) -> None:
    response = api.post("/api/crossover", json=body)

    assert response.status_code == 422
    assert [issue["loc"] for issue in response.json()["detail"]] == [loc]
    assert tasks.sent == [] and count(bench_app, CrossoverRun) == 0


def test_a_refused_crossover_is_503_and_kept_as_failed(api: TestClient, tasks: TaskQueue) -> None:
    tasks.error = ConnectionError("broker down")

    response = api.post("/api/crossover", json={"rows": 8, "cols": 8})

    assert response.status_code == 503
    runs = api.get("/api/crossover").json()
    assert [(run["status"], "broker down" in run["error"]) for run in runs] == [("failed", True)]


def test_crossover_runs_are_listed_newest_first_with_their_results(
    bench_app: FastAPI, api: TestClient
) -> None:
    ids = [api.post("/api/crossover", json={"rows": 8, "cols": 4 + n}).json()["id"] for n in range(3)]
    point = {"density": 0.1, "nonzeros": 3, "dense_us": 2.0, "sparse_us": 1.0, "speedup": 2.0}
    with session_scope(bench_app.state.context.session_factory) as session:
        run = session.get_one(CrossoverRun, ids[1])
        run.status, run.timings, run.crossover = "succeeded", {"tensorflow": [point]}, {"tensorflow": 0.1}

    listed = api.get("/api/crossover").json()
    page = api.get("/api/crossover", params={"limit": 1, "offset": 1}).json()
    one = api.get(f"/api/crossover/{ids[1]}").json()

    assert [run["id"] for run in listed] == ids[::-1]
    assert [run["id"] for run in page] == [ids[1]]
    assert one["status"] == "succeeded" and one["crossover"] == {"tensorflow": 0.1}
    assert one["timings"]["tensorflow"] == [{**point, "dense_bytes": None, "sparse_bytes": None}]


def test_unknown_crossover_runs_are_404_and_bad_ids_422(api: TestClient) -> None:
    assert api.get("/api/crossover/77").status_code == 404
    assert api.get("/api/crossover/0").status_code == 422
    assert api.get("/api/crossover", params={"limit": 0}).status_code == 422


def test_deleting_an_experiment_removes_its_benchmarks_and_tflite_files(
    bench_app: FastAPI, api: TestClient, made: Any
) -> None:
    experiment_id = made.experiment(status="succeeded")
    made.cycle(experiment_id, 0)
    add_benchmark(made, experiment_id, 0, "float32", latency_median_us=10.0)

    assert api.delete(f"/api/experiments/{experiment_id}").status_code == 204

    assert count(bench_app, TFLiteBenchmark) == 0 and count(bench_app, Artifact) == 0
    assert count(bench_app, Experiment) == 0
