"""A worker SIGKILLed mid-experiment: the next worker resumes from the checkpoint, or fails the run.

Real Redis, real worker processes (each in its own process group, killed group and all), and a
throwaway PostgreSQL database. The lease is 4 s, so the orphan is noticed within seconds.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from worker_fixtures import (
    cycle_rows,
    experiment_row,
    insert_experiment,
    migrated,
    redis_broker,
    running_worker,
    tiny_spec,
    wait_for,
    wait_for_status,
)

from backend.db import session_scope
from backend.models import Artifact, EpochRow
from backend.queue import CeleryQueue
from backend.settings import Settings

FINISHED = {"succeeded", "failed", "cancelled"}
#: Cycle 0 trains one epoch, later cycles eight: the kill lands while cycle 1 trains.
SPEC = tiny_spec(training={"first_epochs": 1, "epochs": 8})


def crash_settings(postgres_settings: Settings, max_attempts: int) -> Settings:
    """The PostgreSQL test database with Redis, a 0.5 s heartbeat and a 4 s lease."""
    return Settings(
        data_dir=postgres_settings.data_dir,
        database_url=postgres_settings.database_url,
        broker_url=redis_broker(),
        heartbeat_seconds=0.5,
        lease_seconds=4,
        max_attempts=max_attempts,
    )


def run_until_cycle_0_then_kill(settings: Settings, sessions: sessionmaker[Session], log: Path) -> int:
    """Start a worker on a new experiment and SIGKILL its process group once cycle 0 is recorded."""
    experiment_id = insert_experiment(sessions, SPEC)
    with running_worker(settings, log, name="doomed") as worker:
        CeleryQueue(settings).enqueue(experiment_id)
        wait_for(lambda: cycle_rows(sessions, experiment_id), 90, "cycle 0", worker)
        worker.kill()
    return experiment_id


def artifact_ids(
    sessions: sessionmaker[Session], experiment_id: int, kind: str
) -> list[tuple[int | None, int]]:
    with session_scope(sessions) as session:
        rows = session.execute(
            select(Artifact.cycle_index, Artifact.id)
            .where(Artifact.experiment_id == experiment_id, Artifact.kind == kind)
            .order_by(Artifact.cycle_index)
        ).all()
    return [(index, artifact_id) for index, artifact_id in rows]


def test_a_killed_worker_is_resumed_from_its_checkpoint(postgres_settings: Settings, tmp_path: Path) -> None:
    settings = crash_settings(postgres_settings, max_attempts=3)
    sessions = migrated(settings)
    experiment_id = run_until_cycle_0_then_kill(settings, sessions, tmp_path / "doomed.log")
    orphan = experiment_row(sessions, experiment_id)
    cycle_0 = cycle_rows(sessions, experiment_id)[0]
    trained_0 = artifact_ids(sessions, experiment_id, "trained")[0]
    assert (orphan.status, orphan.attempts, len(cycle_rows(sessions, experiment_id))) == ("running", 1, 1)

    with running_worker(settings, tmp_path / "rescuer.log", name="rescuer") as rescuer:
        row = wait_for_status(sessions, experiment_id, FINISHED, 120, rescuer)
        log = rescuer.log_text()

    assert (row.status, row.error, row.attempts) == ("succeeded", None, 2)
    assert row.worker is not None and row.worker.startswith("rescuer@")
    assert f"experiment {experiment_id}: resume (attempt 2: resuming at cycle 1)" in log
    cycles = cycle_rows(sessions, experiment_id)
    assert [c.index for c in cycles] == [0, 1, 2]
    # cycle 0 was not run again: the very same row, untouched
    assert (cycles[0].id, cycles[0].created_at, cycles[0].val_metric) == (
        cycle_0.id,
        cycle_0.created_at,
        cycle_0.val_metric,
    )
    assert artifact_ids(sessions, experiment_id, "trained")[0] == trained_0
    # cycle 1 trained the checkpoint cycle 0 handed on
    assert cycles[1].widths == cycle_0.widths_after and cycles[1].widths["hidden"] < 16
    with session_scope(sessions) as session:
        epochs = session.execute(
            select(EpochRow.cycle, EpochRow.epoch).where(EpochRow.experiment_id == experiment_id)
        ).all()
    assert sorted(epochs) == [(0, 0)] + [(c, e) for c in (1, 2) for e in range(8)]
    assert [index for index, _ in artifact_ids(sessions, experiment_id, "final")] == [2]


def test_a_killed_worker_with_no_attempts_left_fails_the_run(
    postgres_settings: Settings, tmp_path: Path
) -> None:
    settings = crash_settings(postgres_settings, max_attempts=1)
    sessions = migrated(settings)
    experiment_id = run_until_cycle_0_then_kill(settings, sessions, tmp_path / "doomed.log")

    with running_worker(settings, tmp_path / "sweeper.log", name="sweeper") as sweeper:
        row = wait_for_status(sessions, experiment_id, FINISHED, 60, sweeper)

    assert row.status == "failed" and row.attempts == 1
    assert row.error is not None and "worker lost 1 time" in row.error
    assert row.finished_at is not None
    assert [c.index for c in cycle_rows(sessions, experiment_id)] == [0]  # what finished stays readable
