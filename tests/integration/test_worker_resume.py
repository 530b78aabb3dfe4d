"""The recorder and the resume point, in this process, on a real SQLite database.

A run that crashes after cycle 0 and resumes from the database's checkpoint must continue exactly as
the uninterrupted run did (the engine reseeds every cycle).
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from worker_fixtures import cycle_rows, experiment_row, insert_experiment, migrated, tiny_spec

from backend.db import session_scope
from backend.models import Artifact, Experiment
from backend.service import runs
from backend.settings import Settings
from prunespec.spec import ExperimentSpec
from tests.backoff_case import UNITS, backoff_spec, backoff_weights
from worker.recorder import DatabaseRecorder


class Crash(Exception):
    """Stands in for a worker dying."""


def start(sessions: sessionmaker[Session], spec: dict[str, Any]) -> runs.Lease:
    experiment_id = insert_experiment(sessions, spec)
    with session_scope(sessions) as session:
        lease = runs.claim(session, experiment_id, "test/1", 60, 3).lease
    assert lease is not None
    return lease


def recorder(
    sessions: sessionmaker[Session], lease: runs.Lease, spec: ExperimentSpec, **kw: Any
) -> DatabaseRecorder:
    return DatabaseRecorder(sessions, lease, spec, metric_name="rmse", higher_is_better=False, **kw)


@pytest.fixture
def sessions(sqlite_settings: Settings) -> sessionmaker[Session]:
    return migrated(sqlite_settings)


def test_a_resumed_run_continues_exactly_as_an_uninterrupted_one(sessions: sessionmaker[Session]) -> None:
    from worker.engine.cycle import run_cycles
    from worker.engine.data import load_dataset
    from worker.engine.results import EpochRecord
    from worker.resume import resume_point

    raw = tiny_spec()
    spec = ExperimentSpec.model_validate(raw)
    data = load_dataset(spec.dataset, seed=spec.seed)
    whole = start(sessions, raw)
    run_cycles(spec, data, recorder(sessions, whole, spec))

    class CrashInCycle1(DatabaseRecorder):
        def on_epoch(self, record: EpochRecord) -> None:
            if record.cycle == 1:
                raise Crash
            super().on_epoch(record)

    broken = start(sessions, raw)
    with pytest.raises(Crash):
        run_cycles(
            spec, data, CrashInCycle1(sessions, broken, spec, metric_name="rmse", higher_is_better=False)
        )
    with session_scope(sessions) as session:
        point = resume_point(session, broken.experiment_id)
    run_cycles(spec, data, recorder(sessions, broken, spec), resume=point)

    expected = cycle_rows(sessions, whole.experiment_id)
    resumed = cycle_rows(sessions, broken.experiment_id)
    assert point.cycle == 1
    assert point.spec.widths() == expected[1].widths
    assert point.baseline_metric == pytest.approx(expected[0].val_metric)
    assert [c.widths for c in resumed] == [c.widths for c in expected]
    assert [c.val_metric for c in resumed] == pytest.approx([c.val_metric for c in expected], rel=1e-4)
    assert [c.pruned_from for c in resumed] == [None, 0, 1]
    assert (point.rejections, point.kept.index if point.kept else None) == (0, 0)
    summary = experiment_row(sessions, broken.experiment_id)
    assert (summary.cycles_done, summary.final_widths) == (3, expected[2].widths)


def test_a_run_resumed_after_a_rejected_cycle_backs_off_from_the_kept_model(
    sessions: sessionmaker[Session],
) -> None:
    from worker.engine.cycle import run_cycles
    from worker.engine.data import load_dataset
    from worker.engine.results import EpochRecord
    from worker.resume import resume_point

    # cycle 1 removes 12 units and is rejected; cycle 2 retries from cycle 0 with one unit and is kept
    spec = backoff_spec({"retries": 1, "factor": 0.1})
    raw = spec.model_dump(mode="json")
    data = load_dataset(spec.dataset, seed=spec.seed)

    class CrashInCycle2(DatabaseRecorder):
        def on_epoch(self, record: EpochRecord) -> None:
            if record.cycle == 2:
                raise Crash
            super().on_epoch(record)

    lease = start(sessions, raw)
    with pytest.raises(Crash):
        run_cycles(
            spec,
            data,
            CrashInCycle2(sessions, lease, spec, metric_name="rmse", higher_is_better=False),
            initial_weights=backoff_weights(),
        )
    with session_scope(sessions) as session:
        point = resume_point(session, lease.experiment_id)
    assert (point.cycle, point.rejections) == (2, 1)
    assert point.kept is not None and point.kept.index == 0
    assert point.kept.spec.widths()["hidden"] == UNITS
    assert point.spec.widths()["hidden"] == UNITS - 1  # the checkpoint is the backed-off cycle 0 model
    result = run_cycles(spec, data, recorder(sessions, lease, spec), resume=point)

    rows = cycle_rows(sessions, lease.experiment_id)
    assert [(c.accepted, c.pruned_from, c.widths["hidden"]) for c in rows] == [
        (True, None, UNITS),
        (False, 0, UNITS - 12),
        (True, 0, UNITS - 1),
    ]
    assert (result.stop_reason, result.final.index) == ("max_cycles", 2)


def test_stored_models_carry_no_optimizer_state(sessions: sessionmaker[Session]) -> None:
    from worker.engine.cycle import run_cycles
    from worker.engine.data import load_dataset

    raw = tiny_spec(pruning={"max_cycles": 1})
    spec = ExperimentSpec.model_validate(raw)
    lease = start(sessions, raw)
    run_cycles(spec, load_dataset(spec.dataset, seed=spec.seed), recorder(sessions, lease, spec))

    with session_scope(sessions) as session:
        content = session.scalars(select(Artifact.content).where(Artifact.kind == "trained")).one()
    weights = zipfile.ZipFile(io.BytesIO(content)).read("model.weights.h5")
    assert b"vars" in weights and b"optimizer" not in weights


def test_cancel_is_read_at_most_once_a_second(sessions: sessionmaker[Session]) -> None:
    raw = tiny_spec()
    lease = start(sessions, raw)
    now = [100.0]
    watcher = recorder(sessions, lease, ExperimentSpec.model_validate(raw), clock=lambda: now[0])

    before = watcher.cancelled()
    with session_scope(sessions) as session:
        session.get_one(Experiment, lease.experiment_id).cancel_requested = True
    now[0] += 0.5
    within_the_second = watcher.cancelled()
    now[0] += 0.5
    after_the_second = watcher.cancelled()

    assert (before, within_the_second, after_the_second) == (False, False, True)


def test_a_lost_lease_stops_the_run(sessions: sessionmaker[Session]) -> None:
    from worker.recorder import Heartbeat

    raw = tiny_spec()
    lease = start(sessions, raw)
    heartbeat = Heartbeat(sessions, lease, interval=60)
    watcher = recorder(sessions, lease, ExperimentSpec.model_validate(raw), heartbeat=heartbeat)
    assert heartbeat.beat() is True and watcher.cancelled() is False

    with session_scope(sessions) as session:
        session.get_one(Experiment, lease.experiment_id).status = "queued"  # released by an orphan sweep

    assert heartbeat.beat() is False
    assert heartbeat.lost and watcher.cancelled() is True


def test_a_resume_without_a_checkpoint_or_a_cycle_0_is_refused_by_name(
    sessions: sessionmaker[Session],
) -> None:
    from backend.service.checkpoints import CheckpointMissing, latest_checkpoint

    experiment_id = insert_experiment(sessions, tiny_spec())
    with session_scope(sessions) as session, pytest.raises(CheckpointMissing, match="no checkpoint"):
        latest_checkpoint(session, experiment_id)
    with session_scope(sessions) as session:
        session.add(
            Artifact(
                experiment_id=experiment_id,
                cycle_index=0,
                kind="checkpoint",
                filename="cycle-0.keras",
                size_bytes=3,
                sha256="0" * 64,
                content=b"abc",
            )
        )
    with session_scope(sessions) as session, pytest.raises(CheckpointMissing, match="no cycle 0"):
        latest_checkpoint(session, experiment_id)
