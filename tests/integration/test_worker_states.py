"""The worker's state transitions (``backend.service.runs``, ``recording``, ``orphans``) on real SQLite
and PostgreSQL databases.

No worker and no TensorFlow here: each test drives claim / heartbeat / record / finish directly,
with explicit clocks for the lease.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import exc, select
from sqlalchemy.orm import Session, sessionmaker
from worker_fixtures import cycle_rows, experiment_row, insert_experiment, tiny_spec

from backend.db import make_engine, make_session_factory, session_scope
from backend.models import Artifact, ArtifactKind, Cycle, EpochRow, Experiment, LayerStatsRow, Status, utcnow
from backend.progress import ProgressDetail
from backend.service import orphans, recording, runs
from backend.service.orphans import OrphanFate
from backend.service.recording import EpochValues, ModelFile
from backend.service.runs import ClaimAction, Lease, LeaseLost
from backend.settings import Settings

LEASE = 30.0
MAX_ATTEMPTS = 3


@pytest.fixture(params=["sqlite", "postgres"])
def sessions(request: pytest.FixtureRequest) -> Iterator[sessionmaker[Session]]:
    """A session factory on a migrated, empty database of each kind."""
    settings: Settings = request.getfixturevalue(f"migrated_{request.param}_settings")
    engine = make_engine(settings)
    yield make_session_factory(engine)
    engine.dispose()


def claim(
    sessions: sessionmaker[Session], experiment_id: int, now: datetime | None = None, worker: str = "w/1"
) -> runs.Claim:
    with session_scope(sessions) as session:
        return runs.claim(session, experiment_id, worker, LEASE, MAX_ATTEMPTS, now=now)


def leased(sessions: sessionmaker[Session], experiment_id: int, now: datetime | None = None) -> Lease:
    result = claim(sessions, experiment_id, now)
    assert result.lease is not None, result
    return result.lease


def cycle(
    index: int, *, accepted: bool = True, val_metric: float = 0.5, layers: tuple[str, ...] = ("hidden",)
) -> Cycle:
    widths = {"hidden": 16 - index, "out": 1}
    return Cycle(
        index=index,
        model_spec={"input_shape": [2], "layers": []},
        widths=widths,
        widths_after={"hidden": 15 - index, "out": 1},
        params=100 - index,
        flops=200 - index,
        layer_costs=[],
        removed={},
        folded={},
        merged={},
        metric_name="rmse",
        loss=1.0,
        metric=1.0,
        val_loss=val_metric**2,
        val_metric=val_metric,
        train_seconds=0.1,
        stats_seconds=0.1,
        prune_seconds=0.1,
        accepted=accepted,
        layers=[
            LayerStatsRow(
                layer=name,
                units=4,
                outputs=10,
                summary={},
                histogram=[1, 2],
                bin_edges=[0.0, 0.5, 1.0],
                active=b"a",
                zeros=b"z",
                mean=b"m",
                variance=b"v",
                minimum=b"n",
                maximum=b"x",
                unit_histograms=b"h",
            )
            for name in layers
        ],
    )


def record(
    sessions: sessionmaker[Session],
    lease: Lease,
    row: Cycle,
    *,
    checkpoint: bool = True,
    now: datetime | None = None,
) -> None:
    trained = ModelFile(f"cycle-{row.index}-trained.keras", f"trained {row.index}".encode())
    pruned = (
        ModelFile(f"cycle-{row.index}-pruned.keras", f"pruned {row.index}".encode()) if checkpoint else None
    )
    with session_scope(sessions) as session:
        recording.record_cycle(session, lease, row, trained, pruned, higher_is_better=False, now=now)


def epoch(cycle_index: int, epoch_index: int, loss: float = 1.0) -> EpochValues:
    return EpochValues(
        cycle=cycle_index,
        epoch=epoch_index,
        loss=loss,
        metric=loss,
        val_loss=loss,
        val_metric=loss,
        seconds=0.1,
    )


def record_epoch(
    sessions: sessionmaker[Session], lease: Lease, values: EpochValues, progress: float = 0.1
) -> None:
    with session_scope(sessions) as session:
        recording.record_epoch(
            session, lease, values, progress=progress, progress_detail=ProgressDetail(epoch=values.epoch)
        )


def artifacts(sessions: sessionmaker[Session], experiment_id: int) -> list[tuple[str, int | None, bytes]]:
    with session_scope(sessions) as session:
        rows = session.execute(
            select(Artifact.kind, Artifact.cycle_index, Artifact.content)
            .where(Artifact.experiment_id == experiment_id)
            .order_by(Artifact.kind, Artifact.cycle_index)
        ).all()
    return [(kind, index, bytes(content)) for kind, index, content in rows]


def epochs(sessions: sessionmaker[Session], experiment_id: int) -> list[tuple[int, int, float | None]]:
    with session_scope(sessions) as session:
        rows = session.execute(
            select(EpochRow.cycle, EpochRow.epoch, EpochRow.loss)
            .where(EpochRow.experiment_id == experiment_id)
            .order_by(EpochRow.cycle, EpochRow.epoch)
        ).all()
    return [(c, e, loss) for c, e, loss in rows]


# --------------------------------------------------------------------------------------------- claim


def test_a_queued_experiment_is_claimed_once(sessions: sessionmaker[Session]) -> None:
    experiment_id = insert_experiment(sessions, tiny_spec())

    first = claim(sessions, experiment_id, worker="a/1")
    second = claim(sessions, experiment_id, worker="b/2")

    assert first.action is ClaimAction.fresh and first.next_cycle == 0
    assert first.lease == Lease(experiment_id=experiment_id, attempt=1, worker="a/1")
    assert first.spec == tiny_spec()
    assert second.action is ClaimAction.skip and second.lease is None
    assert "running on a/1" in second.reason
    row = experiment_row(sessions, experiment_id)
    assert (row.status, row.attempts, row.worker) == ("running", 1, "a/1")
    assert row.started_at is not None and row.heartbeat_at is not None


def test_concurrent_claims_have_exactly_one_winner(sessions: sessionmaker[Session]) -> None:
    experiment_id = insert_experiment(sessions, tiny_spec())
    barrier = threading.Barrier(4)
    outcomes: list[runs.Claim] = []
    errors: list[BaseException] = []

    def contend(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            outcomes.append(claim(sessions, experiment_id, worker=f"w/{index}"))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert not errors
    assert sorted(outcome.action.value for outcome in outcomes) == ["fresh", "skip", "skip", "skip"]
    assert experiment_row(sessions, experiment_id).attempts == 1


def test_a_stale_run_is_taken_over_and_its_old_worker_fenced_off(sessions: sessionmaker[Session]) -> None:
    experiment_id = insert_experiment(sessions, tiny_spec())
    start = utcnow()
    old = leased(sessions, experiment_id, now=start)

    fresh_heartbeat = claim(sessions, experiment_id, now=start + timedelta(seconds=LEASE - 1))
    takeover = claim(sessions, experiment_id, now=start + timedelta(seconds=LEASE + 1), worker="b/2")

    assert fresh_heartbeat.action is ClaimAction.skip
    assert takeover.action is ClaimAction.fresh and takeover.lease is not None
    assert takeover.lease.attempt == 2
    with session_scope(sessions) as session:
        assert runs.heartbeat(session, old) is False
        assert runs.heartbeat(session, takeover.lease) is True
    with pytest.raises(LeaseLost):
        record_epoch(sessions, old, epoch(0, 0))
    with pytest.raises(LeaseLost):
        record(sessions, old, cycle(0))
    with session_scope(sessions) as session:
        assert runs.fail(session, old, "zombie") is False
    assert epochs(sessions, experiment_id) == [] and cycle_rows(sessions, experiment_id) == []
    assert experiment_row(sessions, experiment_id).status == "running"


def test_a_takeover_resumes_after_the_last_checkpoint(sessions: sessionmaker[Session]) -> None:
    experiment_id = insert_experiment(sessions, tiny_spec())
    start = utcnow()
    old = leased(sessions, experiment_id, now=start)
    record_epoch(sessions, old, epoch(0, 0))
    record(sessions, old, cycle(0), now=start)
    record_epoch(sessions, old, epoch(1, 0))  # cycle 1 never finished

    takeover = claim(sessions, experiment_id, now=start + timedelta(seconds=LEASE + 1))

    assert takeover.action is ClaimAction.resume
    assert takeover.next_cycle == 1
    assert takeover.last_cycle == runs.LastCycle(index=0, accepted=True, has_checkpoint=True)
    assert epochs(sessions, experiment_id) == [(0, 0, 1.0)]  # the dead attempt's partial cycle is gone


@pytest.mark.parametrize(
    ("accepted", "max_cycles", "reason"),
    [(True, 2, "max_cycles"), (True, 5, "nothing_removed"), (False, 5, "tolerance")],
)
def test_a_takeover_after_the_last_cycle_only_finishes(
    sessions: sessionmaker[Session], accepted: bool, max_cycles: int, reason: str
) -> None:
    experiment_id = insert_experiment(sessions, tiny_spec())
    start = utcnow()
    old = leased(sessions, experiment_id, now=start)
    record(sessions, old, cycle(0), now=start)
    record(sessions, old, cycle(1, accepted=accepted), checkpoint=False, now=start)

    takeover = claim(sessions, experiment_id, now=start + timedelta(seconds=LEASE + 1))

    assert takeover.action is ClaimAction.finish and takeover.last_cycle is not None
    assert recording.recorded_stop_reason(takeover.last_cycle, max_cycles) == reason
    assert takeover.lease is not None
    with session_scope(sessions) as session:
        recording.finish(session, takeover.lease, reason)
    row = experiment_row(sessions, experiment_id)
    assert (row.status, row.stop_reason, row.final_cycle) == ("succeeded", reason, 1 if accepted else 0)


def test_an_experiment_out_of_attempts_is_failed_with_a_reason(sessions: sessionmaker[Session]) -> None:
    experiment_id = insert_experiment(sessions, tiny_spec())
    start = utcnow()
    for attempt in range(MAX_ATTEMPTS):
        leased(sessions, experiment_id, now=start + timedelta(seconds=attempt * (LEASE + 1)))

    last = claim(sessions, experiment_id, now=start + timedelta(seconds=MAX_ATTEMPTS * (LEASE + 1)))

    assert last.action is ClaimAction.failed and last.lease is None
    row = experiment_row(sessions, experiment_id)
    assert row.status == "failed" and row.attempts == MAX_ATTEMPTS
    assert row.error is not None and "worker lost 3 times" in row.error
    assert row.finished_at is not None


def test_a_cancelled_experiment_never_starts(sessions: sessionmaker[Session]) -> None:
    requested = insert_experiment(sessions, tiny_spec(), cancel_requested=True)
    cancelled = insert_experiment(sessions, tiny_spec(), status="cancelled", cancel_requested=True)

    outcomes = [claim(sessions, requested), claim(sessions, cancelled)]

    assert [outcome.action for outcome in outcomes] == [ClaimAction.skip, ClaimAction.skip]
    for experiment_id in (requested, cancelled):
        row = experiment_row(sessions, experiment_id)
        assert (row.status, row.attempts, row.started_at) == ("cancelled", 0, None)


def test_finished_and_missing_experiments_are_skipped(sessions: sessionmaker[Session]) -> None:
    done = insert_experiment(sessions, tiny_spec(), status="succeeded", attempts=1)

    assert claim(sessions, done).action is ClaimAction.skip
    assert claim(sessions, done + 1000).action is ClaimAction.skip
    assert experiment_row(sessions, done).attempts == 1


# --------------------------------------------------------------------------------------------- records


def test_a_redelivered_epoch_replaces_the_earlier_row(sessions: sessionmaker[Session]) -> None:
    experiment_id = insert_experiment(sessions, tiny_spec())
    lease = leased(sessions, experiment_id)

    record_epoch(sessions, lease, epoch(0, 0, loss=2.0), progress=0.2)
    record_epoch(sessions, lease, epoch(0, 0, loss=1.5), progress=0.25)
    record_epoch(sessions, lease, epoch(0, 1, loss=1.0), progress=1.7)

    assert epochs(sessions, experiment_id) == [(0, 0, 1.5), (0, 1, 1.0)]
    row = experiment_row(sessions, experiment_id)
    assert row.progress == 1.0  # clipped
    assert row.progress_detail == {"epoch": 1}


def test_a_cycle_is_recorded_all_or_nothing(sessions: sessionmaker[Session]) -> None:
    experiment_id = insert_experiment(sessions, tiny_spec())
    lease = leased(sessions, experiment_id)
    record(sessions, lease, cycle(0))

    with pytest.raises(exc.IntegrityError):
        record(sessions, lease, cycle(1, layers=("hidden", "hidden")))  # violates unique (cycle, layer)

    assert [row.index for row in cycle_rows(sessions, experiment_id)] == [0]
    assert [(kind, index) for kind, index, _ in artifacts(sessions, experiment_id)] == [
        ("checkpoint", 0),
        ("trained", 0),
    ]
    assert experiment_row(sessions, experiment_id).cycles_done == 1


def test_cycles_keep_one_checkpoint_and_the_summary(sessions: sessionmaker[Session]) -> None:
    experiment_id = insert_experiment(sessions, tiny_spec())
    lease = leased(sessions, experiment_id)

    record(sessions, lease, cycle(0, val_metric=0.5))
    record(sessions, lease, cycle(1, val_metric=0.3))
    after_two = artifacts(sessions, experiment_id)
    record(sessions, lease, cycle(2, val_metric=0.9, accepted=False), checkpoint=False)

    assert [(kind, index) for kind, index, _ in after_two] == [
        ("checkpoint", 1),
        ("trained", 0),
        ("trained", 1),
    ]
    assert [(kind, index) for kind, index, _ in artifacts(sessions, experiment_id)] == [
        ("trained", 0),
        ("trained", 1),
        ("trained", 2),
    ]
    row = experiment_row(sessions, experiment_id)
    assert (row.cycles_done, row.metric_name) == (3, "rmse")
    assert (row.initial_params, row.initial_flops) == (100, 200)
    assert (row.final_params, row.final_flops, row.final_widths) == (99, 199, {"hidden": 15, "out": 1})
    assert row.final_metric == pytest.approx(0.3)  # the rejected cycle 2 is not the result
    assert row.best_metric == pytest.approx(0.3)  # rmse: lower is better
    with session_scope(sessions) as session:
        layers = session.scalars(
            select(LayerStatsRow.layer).join(Cycle).where(Cycle.experiment_id == experiment_id)
        )
        assert sorted(layers) == ["hidden", "hidden", "hidden"]


def test_finish_copies_the_final_cycles_model(sessions: sessionmaker[Session]) -> None:
    experiment_id = insert_experiment(sessions, tiny_spec())
    lease = leased(sessions, experiment_id)
    record(sessions, lease, cycle(0))
    record(sessions, lease, cycle(1), checkpoint=False)

    with session_scope(sessions) as session:
        recording.finish(session, lease, "max_cycles", final_cycle=1)

    row = experiment_row(sessions, experiment_id)
    assert (row.status, row.stop_reason, row.final_cycle, row.progress) == ("succeeded", "max_cycles", 1, 1.0)
    assert row.finished_at is not None
    assert ("final", 1, b"trained 1") in artifacts(sessions, experiment_id)
    with session_scope(sessions) as session:
        final = session.scalars(select(Artifact).where(Artifact.kind == ArtifactKind.final.value)).one()
        assert (final.filename, final.size_bytes) == ("final.keras", len(b"trained 1"))
        assert runs.heartbeat(session, lease) is False  # finished: the lease is over


def test_cancel_and_failure_keep_the_recorded_cycles(sessions: sessionmaker[Session]) -> None:
    cancelled_id = insert_experiment(sessions, tiny_spec())
    failed_id = insert_experiment(sessions, tiny_spec())
    cancelled_lease = leased(sessions, cancelled_id)
    failed_lease = leased(sessions, failed_id)
    record(sessions, cancelled_lease, cycle(0))
    record(sessions, failed_lease, cycle(0))

    with session_scope(sessions) as session:
        assert runs.mark_cancelled(session, cancelled_lease) is True
        assert runs.fail(session, failed_lease, "DatasetError: " + "x" * 5000) is True
        assert runs.fail(session, failed_lease, "again") is False  # the lease ended with the failure

    cancelled = experiment_row(sessions, cancelled_id)
    failed = experiment_row(sessions, failed_id)
    assert (cancelled.status, cancelled.stop_reason, cancelled.final_cycle) == ("cancelled", "cancelled", 0)
    assert failed.status == "failed" and failed.error is not None
    assert failed.error.startswith("DatasetError: x") and len(failed.error) == runs.MAX_ERROR_CHARS
    assert len(cycle_rows(sessions, cancelled_id)) == len(cycle_rows(sessions, failed_id)) == 1


def test_cancel_requests_are_seen(sessions: sessionmaker[Session]) -> None:
    experiment_id = insert_experiment(sessions, tiny_spec())
    with session_scope(sessions) as session:
        before = runs.is_cancel_requested(session, experiment_id)
        session.get_one(Experiment, experiment_id).cancel_requested = True
    with session_scope(sessions) as session:
        assert (before, runs.is_cancel_requested(session, experiment_id)) == (False, True)


# --------------------------------------------------------------------------------------------- orphans


def test_orphans_are_requeued_until_their_attempts_run_out(sessions: sessionmaker[Session]) -> None:
    start = utcnow()
    later = start + timedelta(seconds=LEASE + 1)
    alive = insert_experiment(sessions, tiny_spec())
    orphan = insert_experiment(sessions, tiny_spec())
    exhausted = insert_experiment(sessions, tiny_spec(), attempts=MAX_ATTEMPTS - 1)
    leased(sessions, alive, now=later)
    leased(sessions, orphan, now=start)
    leased(sessions, exhausted, now=start)

    with session_scope(sessions) as session:
        found = [o.id for o in orphans.find_orphans(session, LEASE, now=later)]
        fates = {
            experiment_id: orphans.release_orphan(session, experiment_id, LEASE, MAX_ATTEMPTS, now=later)
            for experiment_id in (alive, orphan, exhausted)
        }

    assert found == [orphan, exhausted]
    assert fates == {alive: OrphanFate.gone, orphan: OrphanFate.requeued, exhausted: OrphanFate.failed}
    requeued = experiment_row(sessions, orphan)
    assert (requeued.status, requeued.attempts) == (Status.queued.value, 1)
    failed = experiment_row(sessions, exhausted)
    assert failed.status == "failed" and failed.error is not None and "worker lost 3 times" in failed.error
    again = claim(sessions, orphan, now=later)
    assert again.action is ClaimAction.fresh and again.lease is not None and again.lease.attempt == 2
