"""Storing TFLite benchmarks (``backend.service.benchmarks``) and crossover runs
(``backend.service.crossover``) on real SQLite and PostgreSQL databases: whole-run replacement, lease
fencing, claims. No TensorFlow."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from worker_fixtures import experiment_row, insert_experiment, tiny_spec

from backend.db import make_engine, make_session_factory, session_scope
from backend.models import Artifact, CrossoverRun, Cycle, Experiment, TFLiteBenchmark, utcnow
from backend.service import benchmarks, crossover, runs
from backend.service.benchmarks import BenchmarkRecord, choose_cycles
from backend.settings import Settings


@pytest.fixture(params=["sqlite", "postgres"])
def sessions(request: pytest.FixtureRequest) -> Iterator[sessionmaker[Session]]:
    settings: Settings = request.getfixturevalue(f"migrated_{request.param}_settings")
    engine = make_engine(settings)
    yield make_session_factory(engine)
    engine.dispose()


def stored(sessions: sessionmaker[Session], experiment_id: int) -> list[tuple[int, str, str, bytes | None]]:
    """(cycle, format, status, .tflite bytes) of every stored row, by id."""
    with session_scope(sessions) as session:
        rows = session.execute(
            select(
                TFLiteBenchmark.cycle_index, TFLiteBenchmark.format, TFLiteBenchmark.status, Artifact.content
            )
            .outerjoin(Artifact, Artifact.id == TFLiteBenchmark.artifact_id)
            .where(TFLiteBenchmark.experiment_id == experiment_id)
            .order_by(TFLiteBenchmark.id)
        ).all()
        return [(c, f, s, None if content is None else bytes(content)) for c, f, s, content in rows]


def tflite_artifacts(sessions: sessionmaker[Session], experiment_id: int) -> list[str]:
    with session_scope(sessions) as session:
        return list(
            session.scalars(
                select(Artifact.filename)
                .where(Artifact.experiment_id == experiment_id, Artifact.kind == "tflite")
                .order_by(Artifact.filename)
            )
        )


@pytest.mark.parametrize(
    ("choice", "recorded", "final", "expected"),
    [
        ("none", [0, 1, 2], 2, []),
        ("every", [2, 0, 1], 1, [0, 1, 2]),
        ("first_last", [0, 1, 2], 1, [0, 1]),  # the final (kept) cycle, not a rejected last one
        ("first_last", [0, 1, 2], None, [0, 2]),
        ("first_last", [0], 0, [0]),
        ("every", [], None, []),
    ],
)
def test_which_cycles_are_benchmarked(
    choice: benchmarks.CycleChoice, recorded: list[int], final: int | None, expected: list[int]
) -> None:
    assert choose_cycles(choice, recorded, final) == expected


def test_a_benchmark_run_replaces_every_earlier_row_and_file(sessions: sessionmaker[Session]) -> None:
    experiment_id = insert_experiment(sessions, tiny_spec(), status="succeeded")
    first = [
        BenchmarkRecord(0, "float32", tflite=b"c0-f32", runs=10, latency_median_us=9.0, total_bits=640),
        BenchmarkRecord(2, "float32", tflite=b"c2-f32", runs=10, latency_median_us=3.0),
        BenchmarkRecord(2, "int8_full", status="failed", error="cannot convert: no int8 kernel"),
    ]
    with session_scope(sessions) as session:
        assert benchmarks.mark_benchmarking(session, experiment_id, [0, 2])
    assert experiment_row(sessions, experiment_id).progress_detail == {
        "stage": "benchmarking",
        "benchmark_cycles": [0, 2],
    }
    with session_scope(sessions) as session:
        assert benchmarks.record_benchmarks(session, experiment_id, first, 3.1)

    assert stored(sessions, experiment_id) == [
        (0, "float32", "ok", b"c0-f32"),
        (2, "float32", "ok", b"c2-f32"),
        (2, "int8_full", "failed", None),
    ]
    row = experiment_row(sessions, experiment_id)
    assert row.latency_speedup == pytest.approx(3.1) and row.progress_detail == {}

    with session_scope(sessions) as session:
        benchmarks.record_benchmarks(
            session, experiment_id, [BenchmarkRecord(1, "float16", tflite=b"c1")], None
        )

    assert stored(sessions, experiment_id) == [(1, "float16", "ok", b"c1")]
    assert tflite_artifacts(sessions, experiment_id) == ["cycle-1-float16.tflite"]
    assert experiment_row(sessions, experiment_id).latency_speedup is None


def test_a_finished_run_refuses_benchmarks_once_it_is_no_longer_succeeded(
    sessions: sessionmaker[Session],
) -> None:
    experiment_id = insert_experiment(sessions, tiny_spec(), status="failed")

    with session_scope(sessions) as session:
        marked = benchmarks.mark_benchmarking(session, experiment_id, [0])
        recorded = benchmarks.record_benchmarks(session, experiment_id, [BenchmarkRecord(0, "float32")], 1.0)

    assert (marked, recorded) == (False, False)
    assert stored(sessions, experiment_id) == []


def test_a_running_experiments_benchmarks_are_fenced_by_its_lease(sessions: sessionmaker[Session]) -> None:
    experiment_id = insert_experiment(sessions, tiny_spec())
    start = utcnow()
    with session_scope(sessions) as session:
        old = runs.claim(session, experiment_id, "old/1", 30, 3, now=start).lease
    with session_scope(sessions) as session:
        new = runs.claim(session, experiment_id, "new/2", 30, 3, now=start + timedelta(seconds=31)).lease
    assert old is not None and new is not None

    with pytest.raises(runs.LeaseLost), session_scope(sessions) as session:
        benchmarks.record_benchmarks(
            session, experiment_id, [BenchmarkRecord(0, "float32", tflite=b"x")], 2.0, lease=old
        )
    assert stored(sessions, experiment_id) == [] and tflite_artifacts(sessions, experiment_id) == []

    with session_scope(sessions) as session:
        benchmarks.record_benchmarks(
            session, experiment_id, [BenchmarkRecord(0, "float32", tflite=b"y")], 2.0, lease=new
        )
    assert stored(sessions, experiment_id) == [(0, "float32", "ok", b"y")]
    assert experiment_row(sessions, experiment_id).latency_speedup == 2.0


def test_the_plan_takes_the_recorded_final_cycle(sessions: sessionmaker[Session]) -> None:
    experiment_id = insert_experiment(sessions, tiny_spec(), status="succeeded", final_cycle=1)
    with session_scope(sessions) as session:
        for index in range(3):
            session.add(
                Cycle(
                    experiment_id=experiment_id,
                    index=index,
                    model_spec={},
                    widths={},
                    widths_after={},
                    params=1,
                    flops=1,
                    layer_costs=[],
                    removed={},
                    folded={},
                    merged={},
                    metric_name="rmse",
                    train_seconds=0.0,
                    stats_seconds=0.0,
                    prune_seconds=0.0,
                    accepted=index < 2,
                )
            )

    with session_scope(sessions) as session:
        assert benchmarks.plan(session, experiment_id, "first_last") == ([0, 1], 1)
        assert benchmarks.plan(session, experiment_id, "every") == ([0, 1, 2], 1)
        session.get_one(Experiment, experiment_id).final_cycle = None
        session.flush()
        assert benchmarks.plan(session, experiment_id, "first_last") == ([0, 1], 1)  # newest accepted
        assert benchmarks.trained_cycles(session, experiment_id, [0, 1]) == []  # no models stored


def test_a_crossover_run_is_claimed_once_and_stores_its_results(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as session:
        run = CrossoverRun(
            rows=8,
            cols=4,
            batch=1,
            backends=["litert"],
            densities=[0.25, 1.0],
            runs=5,
            warmup=1,
            threads=1,
            block_rows=4,
        )
        session.add(run)
        session.flush()
        run_id = run.id

    with session_scope(sessions) as session:
        params = crossover.claim(session, run_id, "w/1", 600, 3).params
    with session_scope(sessions) as session:
        again = crossover.claim(session, run_id, "w/2", 600, 3).params
    with session_scope(sessions) as session:
        taken_over = crossover.claim(
            session, run_id, "w/3", 600, 3, now=utcnow() + timedelta(seconds=601)
        ).params

    assert params is not None and again is None and taken_over is not None
    assert (params.densities, params.backends, params.block_rows) == ((0.25, 1.0), ("litert",), 4)
    point = {"density": 0.25, "nonzeros": 8, "dense_us": 2.0, "sparse_us": 1.0, "speedup": 2.0}
    with session_scope(sessions) as session:
        assert crossover.succeed(session, taken_over.lease, {"litert": [point]}, {"litert": 0.25})
        assert not crossover.fail(session, run_id, "too late")  # finished runs stay as they are
    with session_scope(sessions) as session:
        out = crossover.get_run(session, run_id)
    assert (out.status, out.worker, out.error, out.crossover) == ("succeeded", "w/3", None, {"litert": 0.25})
    assert out.timings["litert"][0].speedup == 2.0 and out.finished_at is not None
