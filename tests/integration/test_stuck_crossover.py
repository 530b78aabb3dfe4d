"""Crossover runs under the experiments' lease: heartbeat, take-over, attempts, cancel (SQLite, PostgreSQL).

The service functions run against a real database with explicit clocks; ``worker.crossover.run_claimed``
runs in this process with the engine's sweep replaced by a stand-in (no TensorFlow), so the heartbeat
thread and the cancel checks between densities are the real ones.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker
from stuck_fixtures import insert_crossover, migrated_settings, session_factory

from backend.db import session_scope
from backend.models import CrossoverRun, utcnow
from backend.service import crossover, runs
from backend.service.errors import Conflict, NotFound
from backend.service.runs import ClaimAction
from worker import crossover as crossover_worker
from worker.engine.sparse_bench import DensityTiming, SparseSweep

LEASE = 30.0
MAX_ATTEMPTS = 3


@pytest.fixture(params=["sqlite", "postgres"])
def sessions(request: pytest.FixtureRequest) -> Iterator[sessionmaker[Session]]:
    yield from session_factory(migrated_settings(request))


def insert_run(sessions: sessionmaker[Session]) -> int:
    return insert_crossover(sessions)


def row(sessions: sessionmaker[Session], run_id: int) -> CrossoverRun:
    with session_scope(sessions) as session:
        return session.get_one(CrossoverRun, run_id)


def claim(
    sessions: sessionmaker[Session], run_id: int, worker: str, now: Any = None
) -> crossover.CrossoverClaim:
    with session_scope(sessions) as session:
        return crossover.claim(session, run_id, worker, LEASE, MAX_ATTEMPTS, now=now)


def test_a_running_crossover_is_taken_over_only_after_its_lease(sessions: sessionmaker[Session]) -> None:
    run_id = insert_run(sessions)
    start = utcnow()
    first = claim(sessions, run_id, "a/1", now=start)
    assert first.params is not None
    with session_scope(sessions) as session:
        assert runs.heartbeat(session, first.params.lease, now=start + timedelta(seconds=20))

    early = claim(sessions, run_id, "b/2", now=start + timedelta(seconds=40))  # heartbeat 20 s old
    late = claim(sessions, run_id, "b/2", now=start + timedelta(seconds=51))  # heartbeat 31 s old

    assert early.action is ClaimAction.skip and "running on a/1" in early.reason
    assert late.params is not None and late.params.lease.attempt == 2
    point = {"density": 1.0, "nonzeros": 32, "dense_us": 1.0, "sparse_us": 2.0, "speedup": 0.5}
    with session_scope(sessions) as session:
        assert not runs.heartbeat(session, first.params.lease)  # the dead worker is fenced off
        assert not crossover.succeed(
            session, first.params.lease, {"tensorflow": [point]}, {"tensorflow": None}
        )
        assert crossover.succeed(session, late.params.lease, {"tensorflow": [point]}, {"tensorflow": None})
    done = row(sessions, run_id)
    assert (done.status, done.worker, done.attempts) == ("succeeded", "b/2", 2)


def test_a_crossover_whose_workers_keep_dying_fails_after_max_attempts(
    sessions: sessionmaker[Session],
) -> None:
    run_id = insert_run(sessions)
    now = utcnow()
    for attempt in range(1, MAX_ATTEMPTS + 1):
        claimed = claim(sessions, run_id, f"w/{attempt}", now=now)
        assert claimed.params is not None and claimed.params.lease.attempt == attempt
        now += timedelta(seconds=LEASE + 1)  # it dies: no heartbeat

    last = claim(sessions, run_id, "w/4", now=now)

    assert last.action is ClaimAction.failed and last.params is None
    failed = row(sessions, run_id)
    assert failed.status == "failed" and failed.attempts == MAX_ATTEMPTS
    assert failed.error == "worker lost 3 times (max_attempts 3); giving up"


def test_cancel_stops_a_queued_crossover_at_once_and_a_running_one_on_request(
    sessions: sessionmaker[Session],
) -> None:
    queued = insert_run(sessions)
    running = insert_run(sessions)
    assert claim(sessions, running, "a/1").params is not None

    with session_scope(sessions) as session:
        cancelled = crossover.cancel_run(session, queued)
    with session_scope(sessions) as session:
        asked = crossover.cancel_run(session, running)
    with session_scope(sessions) as session:
        asked_twice = crossover.cancel_run(session, running)

    assert (cancelled.status, cancelled.cancel_requested) == ("cancelled", True)
    assert cancelled.finished_at is not None
    assert (asked.status, asked.cancel_requested) == ("running", True)
    assert asked_twice.status == "running"
    assert claim(sessions, queued, "b/2").action is ClaimAction.skip  # a late delivery never starts it
    with (
        session_scope(sessions) as session,
        pytest.raises(Conflict, match="already finished \\(cancelled\\)"),
    ):
        crossover.cancel_run(session, queued)
    with session_scope(sessions) as session, pytest.raises(NotFound):
        crossover.cancel_run(session, 10_000)


def test_a_crossover_cancelled_while_its_worker_died_ends_cancelled(sessions: sessionmaker[Session]) -> None:
    run_id = insert_run(sessions)
    start = utcnow()
    assert claim(sessions, run_id, "a/1", now=start).params is not None
    with session_scope(sessions) as session:
        crossover.cancel_run(session, run_id)

    redelivered = claim(sessions, run_id, "b/2", now=start + timedelta(seconds=LEASE + 1))

    assert redelivered.action is ClaimAction.skip and "cancelled before it ran" in redelivered.reason
    assert row(sessions, run_id).status == "cancelled"


# --------------------------------------------------------------------------------------------- the worker


def fake_sweep(calls: list[list[float]], during: Any = None) -> Any:
    """Stands in for one back end's engine sweep: records the densities, runs ``during``, times nothing."""

    def sweep(request: Any, backend: str, densities: list[float]) -> SparseSweep:
        calls.append(list(densities))
        if during is not None:
            during()
        points = tuple(
            DensityTiming(density=d, nonzeros=int(32 * d), dense_us=1.0, sparse_us=2.0 * d, speedup=0.5 / d)
            for d in densities
        )
        return SparseSweep(backend, request.rows, request.cols, request.batch, 1, 1, 0, points)

    return sweep


def run(sessions: sessionmaker[Session], run_id: int) -> str:
    return crossover_worker.run_claimed(
        sessions, run_id, "me/1", lease_seconds=LEASE, max_attempts=MAX_ATTEMPTS, heartbeat_seconds=0.05
    )


def test_the_worker_heartbeats_and_stops_between_densities_when_cancelled(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = insert_run(sessions)
    calls: list[list[float]] = []
    heartbeats: list[Any] = []

    def cancel_after_the_first_density() -> None:
        time.sleep(0.3)  # several heartbeat intervals
        heartbeats.append(row(sessions, run_id).heartbeat_at)
        with session_scope(sessions) as session:
            crossover.cancel_run(session, run_id)

    monkeypatch.setattr(crossover_worker, "_sweep", fake_sweep(calls, cancel_after_the_first_density))

    outcome = run(sessions, run_id)

    assert outcome == "cancelled" and calls == [[0.25]]
    done = row(sessions, run_id)
    assert (done.status, done.timings, done.finished_at is not None) == ("cancelled", {}, True)
    assert done.started_at is not None and heartbeats[0] > done.started_at


def test_the_worker_stores_every_density_it_timed_one_by_one(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = insert_run(sessions)
    calls: list[list[float]] = []
    monkeypatch.setattr(crossover_worker, "_sweep", fake_sweep(calls))

    assert run(sessions, run_id) == "succeeded"

    assert calls == [[0.25], [0.5], [1.0]]
    done = row(sessions, run_id)
    assert [point["density"] for point in done.timings["tensorflow"]] == [0.25, 0.5, 1.0]
    assert done.crossover == {"tensorflow": 0.25}  # speed-up 2.0, 1.0, 0.5
    assert (done.status, done.attempts) == ("succeeded", 1)
