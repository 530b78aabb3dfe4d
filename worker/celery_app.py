"""The Celery app workers run: ``celery -A worker.celery_app worker -Q prunelab --pool=prefork``.

The app comes from the settings in the environment (``backend.queue.make_celery``); its tasks are
in ``worker.tasks``. A worker also sweeps for orphans, experiments and crossover runs left
``running`` by a worker that died (SIGKILL, lost machine): at start and then every half lease, each
running row whose heartbeat is older than ``lease_seconds`` goes back to ``queued`` and is enqueued
again (an experiment resumes from its checkpoint), or is failed once ``max_attempts`` deliveries
have started it. The same sweep sends again the id of every queued row no worker claimed for
``requeue_after_seconds`` (its broker message was lost). The broker's own redelivery (Redis after
``broker_visibility_timeout``; the SQLAlchemy transport never) is then only a second line of defence.

When the pool sees a child process die while it runs a task, :class:`LossRecordingRequest` records
how it ended (e.g. "killed by signal 9 SIGKILL, often the out-of-memory killer") on the row, so the
final "worker lost N times" error says why.

Nothing here imports TensorFlow: the prefork pool forks its children from this process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from billiard.einfo import ExceptionInfo, ExceptionWithTraceback
from celery import Celery
from celery.exceptions import WorkerLostError
from celery.signals import worker_ready
from celery.worker.request import Request

from backend.db import make_engine, make_session_factory, session_scope
from backend.models import CrossoverRun, Experiment
from backend.queue import RUN_EXPERIMENT_TASK, CeleryQueue, make_celery
from backend.service.crossover import CROSSOVER_TASK
from backend.service.orphans import (
    OrphanFate,
    describe_loss,
    find_orphans,
    find_unclaimed,
    mark_requeued,
    record_lost_worker,
    release_orphan,
)
from backend.service.runs import LeasedTable
from backend.settings import Settings, get_settings
from worker.tf_noise import quiet_environment

# TensorFlow's start-up and retracing messages stay out of the worker's log unless PRUNELAB_VERBOSE=1;
# the pool's children inherit the environment and the logger levels when they fork.
quiet_environment()

logger = logging.getLogger(__name__)

#: Shortest time between two orphan sweeps, in seconds.
MIN_SWEEP_SECONDS = 1.0


def create_app(settings: Settings) -> Celery:
    """The worker's Celery app, with ``worker.tasks`` registered when the worker starts."""
    app = make_celery(settings)
    app.conf.include = ["worker.tasks"]
    return app


settings = get_settings()
app = create_app(settings)


#: The task that runs each leased table's rows (its only argument is the row's id).
TASKS: dict[str, LeasedTable] = {RUN_EXPERIMENT_TASK: Experiment, CROSSOVER_TASK: CrossoverRun}


def _sender(queue: CeleryQueue, table: LeasedTable) -> Callable[[int], None]:
    """Sends a row's id to the task that runs ``table``'s rows."""
    if table is Experiment:
        return queue.enqueue
    return lambda row_id: queue.send(CROSSOVER_TASK, row_id)


def sweep_orphans(settings: Settings, queue: CeleryQueue) -> list[int]:
    """Re-queue (or fail, when out of attempts) every running row whose heartbeat is stale, and send
    again the id of every queued row no worker claimed (experiments and crossover runs alike).

    Opens and disposes its own engine, so no database connection outlives the sweep in the worker's
    parent process (whose children are forked from it).

    Args:
        settings: the database, the lease/attempt limits and ``requeue_after_seconds``.
        queue: where re-queued rows are sent.

    Returns:
        The ids that were sent again (experiments and crossover runs together).
    """
    engine = make_engine(settings)
    sessions = make_session_factory(engine)
    sent: list[int] = []
    try:
        for table in TASKS.values():
            send = _sender(queue, table)
            sent += _release_orphans(sessions, settings, table, send)
            sent += _resend_unclaimed(sessions, settings, table, send)
    finally:
        engine.dispose()
    return sent


def _release_orphans(
    sessions: Any, settings: Settings, table: LeasedTable, send: Callable[[int], None]
) -> list[int]:
    requeued: list[int] = []
    with session_scope(sessions) as session:
        orphans = find_orphans(session, settings.lease_seconds, table=table)
    for orphan in orphans:
        with session_scope(sessions) as session:
            fate = release_orphan(
                session, orphan.id, settings.lease_seconds, settings.max_attempts, table=table
            )
            if fate is OrphanFate.requeued:
                send(orphan.id)  # before the commit: a refused send rolls the release back
                requeued.append(orphan.id)
        logger.warning(
            "%s %s: worker %s stopped heartbeating (attempt %s): %s",
            table.__tablename__,
            orphan.id,
            orphan.worker,
            orphan.attempts,
            fate.value,
        )
    return requeued


def _resend_unclaimed(
    sessions: Any, settings: Settings, table: LeasedTable, send: Callable[[int], None]
) -> list[int]:
    resent: list[int] = []
    with session_scope(sessions) as session:
        waiting = find_unclaimed(session, settings.requeue_after_seconds, table=table)
    for row_id in waiting:
        with session_scope(sessions) as session:
            if mark_requeued(session, row_id, settings.requeue_after_seconds, table=table):
                send(row_id)  # before the commit: a refused send rolls the mark back
                resent.append(row_id)
        logger.warning(
            "%s %s: queued but claimed by no worker; its id was sent again", table.__tablename__, row_id
        )
    return resent


class LossRecordingRequest(Request):
    """Celery's task request, which also records how a lost pool process ended on the row it ran.

    Runs in the worker's parent process: when a child dies mid-task (the out-of-memory killer's
    SIGKILL, a segfault), Celery fails the request with ``WorkerLostError`` ("signal 9 (SIGKILL)").
    Before Celery re-queues the message, the row gets ``last_loss`` and an expired heartbeat
    (``backend.service.orphans.record_lost_worker``).
    """

    def on_failure(
        self, exc_info: ExceptionInfo, send_failed_event: bool = True, return_ok: bool = False
    ) -> None:
        """Record a lost worker process, then let Celery handle the failure as usual."""
        error = exc_info.exception
        if isinstance(error, ExceptionWithTraceback):  # how the pool hands it over
            error = error.exc
        if isinstance(error, WorkerLostError):
            record_worker_loss(settings, self.name, self.args, f"{self.hostname}/{self.worker_pid}", error)
        super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)


def record_worker_loss(settings: Settings, task: str, args: Any, worker: str, error: BaseException) -> bool:
    """Store how a lost pool process ended on the row its task was running (never raises).

    Args:
        settings: the database.
        task: the task's name (``RUN_EXPERIMENT_TASK`` or ``CROSSOVER_TASK``; others are ignored).
        args: the task's arguments (the row id first).
        worker: the lost process as its claim recorded it (``host/pid``).
        error: the pool's ``WorkerLostError``.

    Returns:
        True when a row was marked.
    """
    table = TASKS.get(task)
    if table is None or not args:
        return False
    loss = describe_loss(str(error))
    try:
        engine = make_engine(settings)
        try:
            with session_scope(make_session_factory(engine)) as session:
                marked = record_lost_worker(session, int(args[0]), worker, loss, table=table)
        finally:
            engine.dispose()
    except Exception:  # the database is down: the orphan sweep still recovers the row, without the why
        logger.exception("%s %s: could not record the lost worker (%s)", table.__tablename__, args[0], loss)
        return False
    logger.warning("%s %s: worker %s lost: %s", table.__tablename__, args[0], worker, loss)
    return marked


def _sweep_safely(settings: Settings, queue: CeleryQueue) -> None:
    try:
        sweep_orphans(settings, queue)
    except Exception:  # the database or broker is down: the next sweep tries again
        logger.exception("orphan sweep failed")


@worker_ready.connect
def _start_orphan_sweeps(sender: Any = None, **_: Any) -> None:
    """Sweep once when the worker is ready, then every half lease on the worker's timer."""
    queue = CeleryQueue(settings, app=app)
    _sweep_safely(settings, queue)
    timer = getattr(sender, "timer", None)
    if timer is not None:
        interval = max(settings.lease_seconds / 2, MIN_SWEEP_SECONDS)
        timer.call_repeatedly(interval, _sweep_safely, (settings, queue))
