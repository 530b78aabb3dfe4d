"""Runs no worker runs: queued rows whose broker message was lost, and crossover runs whose worker died.

The worker's sweep (``worker.celery_app.sweep_orphans``) runs here against a real database (SQLite and
PostgreSQL) and the real test Redis: what it sends is read back from the broker's queue. No worker
process and no TensorFlow: the clock is moved by ageing the rows.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker
from stuck_fixtures import insert_crossover, migrated_settings, session_factory
from worker_fixtures import REDIS_URL, experiment_row, insert_experiment, redis_broker, tiny_spec

from backend.db import session_scope
from backend.models import CrossoverRun, Experiment, utcnow
from backend.queue import EXPERIMENT_QUEUE, RUN_EXPERIMENT_TASK, CeleryQueue
from backend.service import crossover, orphans
from backend.service.crossover import CROSSOVER_TASK
from backend.service.runs import ClaimAction
from backend.settings import Settings
from worker.celery_app import sweep_orphans

REQUEUE_AFTER = 300.0
LEASE = 30.0


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest) -> Settings:
    """A migrated database of each kind with the flushed test Redis, a 30 s lease, re-sends after 300 s."""
    chosen = migrated_settings(request)
    return Settings(
        data_dir=chosen.data_dir,
        database_url=chosen.database_url,
        broker_url=redis_broker(),
        lease_seconds=LEASE,
        requeue_after_seconds=REQUEUE_AFTER,
        max_attempts=3,
    )


@pytest.fixture
def sessions(settings: Settings) -> Iterator[sessionmaker[Session]]:
    yield from session_factory(settings)


def sent_messages() -> list[tuple[str, list[Any]]]:
    """(task, args) of every message waiting in the test Redis's experiment queue, oldest first."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        raw = client.lrange(EXPERIMENT_QUEUE, 0, -1)
    finally:
        client.close()
    messages = []
    for item in reversed(raw):  # kombu pushes on the left
        message = json.loads(item)
        args, _, _ = json.loads(base64.b64decode(message["body"]))
        messages.append((message["headers"]["task"], args))
    return messages


def age(sessions: sessionmaker[Session], table: Any, row_id: int, seconds: float, **values: Any) -> None:
    """Move a row's creation (and ``values``) ``seconds`` into the past."""
    with session_scope(sessions) as session:
        session.execute(
            update(table)
            .where(table.id == row_id)
            .values(created_at=utcnow() - timedelta(seconds=seconds), **values)
        )


def sweep(settings: Settings) -> list[int]:
    return sweep_orphans(settings, CeleryQueue(settings))


# --------------------------------------------------------------------------------------------- queued


def test_a_queued_experiment_nobody_claimed_is_sent_again_once(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    lost = insert_experiment(sessions, tiny_spec())
    age(sessions, Experiment, lost, REQUEUE_AFTER + 10)
    waiting = insert_experiment(sessions, tiny_spec())  # just created: its message may still come

    first = sweep(settings)
    second = sweep(settings)  # at once: the first re-send is not yet due again

    assert (first, second) == ([lost], [])
    assert sent_messages() == [(RUN_EXPERIMENT_TASK, [lost])]
    row = experiment_row(sessions, lost)
    assert (row.status, row.attempts, row.requeues) == ("queued", 0, 1)
    assert row.requeued_at is not None and abs((utcnow() - row.requeued_at).total_seconds()) < 60
    untouched = experiment_row(sessions, waiting)
    assert (untouched.requeues, untouched.requeued_at) == (0, None)


def test_the_wait_before_another_resend_doubles(sessions: sessionmaker[Session]) -> None:
    experiment_id = insert_experiment(sessions, tiny_spec())
    created = experiment_row(sessions, experiment_id).created_at
    due: list[float] = []
    now = created
    for _ in range(5):
        # the first moment (in whole multiples of the base wait) at which the row is found again
        step = next(
            n
            for n in range(1, 20)
            if experiment_id in find(sessions, now + timedelta(seconds=n * REQUEUE_AFTER + 1))
        )
        now += timedelta(seconds=step * REQUEUE_AFTER + 1)
        with session_scope(sessions) as session:
            assert orphans.mark_requeued(session, experiment_id, REQUEUE_AFTER, now=now)
            assert not orphans.mark_requeued(session, experiment_id, REQUEUE_AFTER, now=now)  # once
        due.append(step)

    assert due == [1, 2, 4, 8, 8]
    assert experiment_row(sessions, experiment_id).requeues == 5


def find(sessions: sessionmaker[Session], now: Any) -> list[int]:
    with session_scope(sessions) as session:
        return orphans.find_unclaimed(session, REQUEUE_AFTER, now=now)


def test_a_resent_experiment_is_claimed_once_and_no_longer_resent(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    from backend.service import runs

    experiment_id = insert_experiment(sessions, tiny_spec())
    age(sessions, Experiment, experiment_id, REQUEUE_AFTER * 20)
    assert sweep(settings) == [experiment_id]

    with session_scope(sessions) as session:
        original = runs.claim(session, experiment_id, "a/1", LEASE, 3)  # the late original delivery
    with session_scope(sessions) as session:
        duplicate = runs.claim(session, experiment_id, "b/2", LEASE, 3)  # the re-sent one

    assert (original.action, duplicate.action) == (ClaimAction.fresh, ClaimAction.skip)
    assert sweep(settings) == []  # running with a live heartbeat: neither unclaimed nor an orphan
    assert experiment_row(sessions, experiment_id).attempts == 1


def test_cancelled_and_finished_experiments_are_never_resent(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    for status in ("cancelled", "succeeded", "failed"):
        experiment_id = insert_experiment(sessions, tiny_spec(), status=status)
        age(sessions, Experiment, experiment_id, REQUEUE_AFTER * 20)

    assert sweep(settings) == []
    assert sent_messages() == []


# --------------------------------------------------------------------------------------------- crossover


def test_a_crossover_whose_worker_died_is_requeued_by_the_sweep(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    run_id = insert_crossover(sessions)
    with session_scope(sessions) as session:
        claimed = crossover.claim(
            session, run_id, "dead/1", LEASE, 3, now=utcnow() - timedelta(seconds=LEASE + 5)
        )
    assert claimed.params is not None

    assert sweep(settings) == [run_id]

    assert sent_messages() == [(CROSSOVER_TASK, [run_id])]
    with session_scope(sessions) as session:
        run = session.get_one(CrossoverRun, run_id)
        assert (run.status, run.attempts, run.requeues) == ("queued", 1, 1)
    with session_scope(sessions) as session:
        again = crossover.claim(session, run_id, "rescuer/2", LEASE, 3)
    assert again.params is not None and again.params.lease.attempt == 2


def test_a_queued_crossover_nobody_claimed_is_sent_again(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    run_id = insert_crossover(sessions)
    age(sessions, CrossoverRun, run_id, REQUEUE_AFTER + 10)

    assert sweep(settings) == [run_id]
    assert sent_messages() == [(CROSSOVER_TASK, [run_id])]
