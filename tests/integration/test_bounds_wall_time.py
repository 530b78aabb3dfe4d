"""The wall-time limit per experiment: the worker stops a run that used it up, keeps its finished cycles
(the newest accepted one is the result, stop reason ``time_limit``), and fails a run that finished none.

In this process on SQLite: the task's own code (``worker.tasks._run_claimed``) with a tiny spec.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker
from worker_fixtures import cycle_rows, experiment_row, insert_experiment, migrated, tiny_spec

from backend.db import session_scope
from backend.models import utcnow
from backend.service import runs
from backend.settings import Settings
from prunespec.spec import ExperimentSpec
from worker.recorder import DatabaseRecorder, Heartbeat


class Crash(Exception):
    """Stands in for a worker dying."""


@pytest.fixture
def sessions(sqlite_settings: Settings) -> sessionmaker[Session]:
    return migrated(sqlite_settings)


def _claim(sessions: sessionmaker[Session], experiment_id: int, *, later: bool = False) -> runs.Claim:
    now = utcnow() + timedelta(hours=1) if later else None  # later: the first worker's lease is stale
    with session_scope(sessions) as session:
        claim = runs.claim(session, experiment_id, f"test/{int(later)}", 60, 3, now=now)
    assert claim.lease is not None, claim
    return claim


def _run(sessions: sessionmaker[Session], settings: Settings, claim: runs.Claim) -> str:
    from worker.tasks import _run_claimed

    assert claim.lease is not None
    heartbeat = Heartbeat(sessions, claim.lease, interval=60)  # never started: never lost
    return _run_claimed(sessions, settings, claim, claim.lease, heartbeat)


def test_the_recorder_stops_the_run_once_its_wall_time_is_used(sessions: sessionmaker[Session]) -> None:
    raw = tiny_spec()
    lease = _claim(sessions, insert_experiment(sessions, raw)).lease
    assert lease is not None
    now = [100.0]
    recorder = DatabaseRecorder(
        sessions,
        lease,
        ExperimentSpec.model_validate(raw),
        metric_name="rmse",
        higher_is_better=False,
        clock=lambda: now[0],
        wall_seconds=30,
    )

    now[0] += 29.9
    before = (recorder.cancelled(), recorder.timed_out)
    now[0] += 0.1
    after = (recorder.cancelled(), recorder.timed_out)

    assert (before, after) == ((False, False), (True, True))


def test_a_run_out_of_wall_time_before_its_first_cycle_fails_saying_so(
    sessions: sessionmaker[Session], sqlite_settings: Settings
) -> None:
    experiment_id = insert_experiment(sessions, tiny_spec())

    outcome = _run(
        sessions, sqlite_settings.model_copy(update={"max_wall_seconds": 0}), _claim(sessions, experiment_id)
    )

    row = experiment_row(sessions, experiment_id)
    assert (outcome, row.status) == ("failed", "failed")
    assert row.error == (
        "stopped after 0 s, the wall time this server allows an experiment (PRUNELAB_MAX_WALL_SECONDS) "
        "before its first cycle finished"
    )


def test_a_run_out_of_wall_time_keeps_its_cycles_and_finishes_with_the_newest_accepted(
    sessions: sessionmaker[Session], sqlite_settings: Settings
) -> None:
    from worker.engine.cycle import run_cycles
    from worker.engine.data import load_dataset
    from worker.engine.results import EpochRecord

    raw = tiny_spec()
    spec = ExperimentSpec.model_validate(raw)
    experiment_id = insert_experiment(sessions, raw)
    first = _claim(sessions, experiment_id)
    assert first.lease is not None

    class CrashInCycle1(DatabaseRecorder):
        def on_epoch(self, record: EpochRecord) -> None:
            if record.cycle == 1:
                raise Crash
            super().on_epoch(record)

    with pytest.raises(Crash):
        recorder = CrashInCycle1(sessions, first.lease, spec, metric_name="rmse", higher_is_better=False)
        run_cycles(spec, load_dataset(spec.dataset, seed=spec.seed), recorder)

    out_of_time = sqlite_settings.model_copy(update={"max_wall_seconds": 0})
    outcome = _run(sessions, out_of_time, _claim(sessions, experiment_id, later=True))

    row = experiment_row(sessions, experiment_id)
    assert (outcome, row.status, row.stop_reason, row.final_cycle) == (
        "succeeded",
        "succeeded",
        "time_limit",
        0,
    )
    assert [cycle.index for cycle in cycle_rows(sessions, experiment_id)] == [0]
