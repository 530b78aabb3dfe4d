"""A worker killed by a signal (the out-of-memory killer's SIGKILL) and an experiment too large to train.

How the pool's child ended is recorded on the row and named in the final error; an experiment whose
estimated training memory exceeds the worker's limit fails at once, before TensorFlow builds anything.
Real databases (SQLite and PostgreSQL) throughout; one test runs a real Celery worker on the test
Redis and SIGKILLs only its pool child, as the kernel does.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery.exceptions import WorkerLostError
from sqlalchemy.orm import Session, sessionmaker
from stuck_fixtures import insert_crossover, migrated_settings, session_factory
from worker_fixtures import (
    experiment_row,
    insert_experiment,
    migrated,
    running_worker,
    sqlite_redis_settings,
    tiny_spec,
    wait_for,
    wait_for_status,
)

from backend.db import session_scope
from backend.queue import RUN_EXPERIMENT_TASK, CeleryQueue
from backend.service import crossover, runs
from backend.service.crossover import CROSSOVER_TASK
from backend.service.orphans import describe_loss
from backend.service.runs import ClaimAction
from backend.settings import Settings
from worker.celery_app import record_worker_loss

LEASE = 60.0
OOM = "killed by signal 9 SIGKILL, often the out-of-memory killer"
KILLED = WorkerLostError("Worker exited prematurely: signal 9 (SIGKILL) Job: 0.")


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest) -> Settings:
    return migrated_settings(request)


@pytest.fixture
def sessions(settings: Settings) -> Iterator[sessionmaker[Session]]:
    yield from session_factory(settings)


@pytest.mark.parametrize(
    ("message", "described"),
    [
        ("Worker exited prematurely: signal 9 (SIGKILL) Job: 0.", OOM),
        ("Worker exited prematurely: signal 15 (SIGTERM) Job: 3.", "killed by signal 15 SIGTERM"),
        ("Worker exited prematurely: signal 11 Job: 0.", "killed by signal 11 SIGSEGV"),
        ("Worker exited prematurely: exitcode 1 Job: 0.", "exited with code 1"),
        ("something else", "something else"),
    ],
)
def test_the_pools_message_is_described_in_words(message: str, described: str) -> None:
    assert describe_loss(message) == described


def claim(sessions: sessionmaker[Session], experiment_id: int, worker: str, max_attempts: int) -> runs.Claim:
    with session_scope(sessions) as session:
        return runs.claim(session, experiment_id, worker, LEASE, max_attempts)


def test_a_lost_worker_is_recorded_and_its_experiment_taken_over_at_once(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    experiment_id = insert_experiment(sessions, tiny_spec())
    assert claim(sessions, experiment_id, "w1@host/101", max_attempts=2).lease is not None

    assert not record_worker_loss(settings, RUN_EXPERIMENT_TASK, [experiment_id], "w1@host/999", KILLED)
    assert record_worker_loss(settings, RUN_EXPERIMENT_TASK, [experiment_id], "w1@host/101", KILLED)

    lost = experiment_row(sessions, experiment_id)
    assert (lost.status, lost.last_loss, lost.heartbeat_at) == ("running", OOM, None)
    # the redelivered message takes over now, not after the 60 s lease
    second = claim(sessions, experiment_id, "w1@host/102", max_attempts=2)
    assert second.action is ClaimAction.fresh and second.lease is not None and second.lease.attempt == 2
    assert record_worker_loss(settings, RUN_EXPERIMENT_TASK, [experiment_id], "w1@host/102", KILLED)
    third = claim(sessions, experiment_id, "w1@host/103", max_attempts=2)

    assert third.action is ClaimAction.failed
    failed = experiment_row(sessions, experiment_id)
    assert failed.status == "failed"
    assert failed.error == f"worker lost 2 times (last: {OOM}; max_attempts 2); giving up"


def test_a_lost_crossover_worker_is_recorded_too(settings: Settings, sessions: sessionmaker[Session]) -> None:
    run_id = insert_crossover(sessions, densities=(1.0,))
    with session_scope(sessions) as session:
        assert crossover.claim(session, run_id, "w1@host/7", LEASE, 1).params is not None

    assert record_worker_loss(settings, CROSSOVER_TASK, [run_id], "w1@host/7", KILLED)
    assert not record_worker_loss(settings, "prunelab.other", [run_id], "w1@host/7", KILLED)
    with session_scope(sessions) as session:
        redelivered = crossover.claim(session, run_id, "w1@host/8", LEASE, 1)

    assert redelivered.action is ClaimAction.failed
    assert redelivered.reason == f"worker lost 1 time (last: {OOM}; max_attempts 1); giving up"


# --------------------------------------------------------------------------------------------- memory


def wide_spec() -> dict[str, Any]:
    """The tiny experiment with a 2 → 16,384 → 16,384 → 1 model: about 5 GiB to train."""
    spec = tiny_spec()
    spec["model"] = {
        "input_shape": [2],
        "layers": [
            {"type": "dense", "name": "hidden", "units": 16384, "activation": "relu"},
            {"type": "dense", "name": "wide", "units": 16384, "activation": "relu"},
            {"type": "dense", "name": "out", "units": 1},
        ],
    }
    return spec


def test_an_experiment_above_the_memory_limit_fails_at_once_in_one_attempt(
    settings: Settings, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    from worker.tasks import run_experiment

    experiment_id = insert_experiment(sessions, wide_spec())
    monkeypatch.setenv("PRUNELAB_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("PRUNELAB_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("PRUNELAB_BROKER_URL", "memory://")
    monkeypatch.setenv("PRUNELAB_WORKER_MEMORY_LIMIT_MB", "4096")

    outcome = run_experiment.run(experiment_id)

    row = experiment_row(sessions, experiment_id)
    assert (outcome, row.status, row.attempts, row.cycles_done) == ("failed", "failed", 1, 0)
    assert row.error is not None
    assert row.error.startswith("estimated training memory ")
    assert "exceeds the worker's limit of 4,096 MiB (worker_memory_limit_mb)" in row.error
    assert row.tf_version is None  # failed before TensorFlow was imported for it


# --------------------------------------------------------------------------------------------- real worker


def test_a_pool_child_killed_by_sigkill_fails_its_experiment_naming_the_signal(tmp_path: Path) -> None:
    settings = sqlite_redis_settings(tmp_path, max_attempts=1, lease_seconds=LEASE)
    sessions = migrated(settings)
    experiment_id = insert_experiment(sessions, tiny_spec(training={"epochs": 50}))

    with running_worker(settings, tmp_path / "worker.log") as worker:
        CeleryQueue(settings).enqueue(experiment_id)
        wait_for(lambda: experiment_row(sessions, experiment_id).status == "running", 60, "the claim", worker)
        (child,) = worker.children()
        os.kill(child, signal.SIGKILL)  # what the out-of-memory killer does: the child only
        # the parent records the loss and the redelivered message finds the attempts used up, long
        # before the 60 s lease would let a sweep notice
        row = wait_for_status(sessions, experiment_id, {"failed", "succeeded"}, 30, worker)

    assert row.status == "failed" and row.attempts == 1
    assert row.error == f"worker lost 1 time (last: {OOM}; max_attempts 1); giving up"
