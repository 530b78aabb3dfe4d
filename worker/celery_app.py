"""The Celery app workers run: ``celery -A worker.celery_app worker -Q prunelab --pool=prefork``.

The app comes from the settings in the environment (``backend.queue.make_celery``); its one task is
in ``worker.tasks``. A worker also sweeps for orphans, experiments left ``running`` by a worker that
died (SIGKILL, lost machine): at start and then every half lease, each running experiment whose
heartbeat is older than ``lease_seconds`` goes back to ``queued`` and is enqueued again (it resumes
from its checkpoint), or is failed once ``max_attempts`` deliveries have started it. The broker's
own redelivery (Redis after ``broker_visibility_timeout``; the SQLAlchemy transport never) is then
only a second line of defence.

Nothing here imports TensorFlow: the prefork pool forks its children from this process.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from celery.signals import worker_ready

from backend.db import make_engine, make_session_factory, session_scope
from backend.queue import CeleryQueue, make_celery
from backend.service.orphans import OrphanFate, find_orphans, release_orphan
from backend.settings import Settings, get_settings

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


def sweep_orphans(settings: Settings, queue: CeleryQueue) -> list[int]:
    """Re-queue (or fail, when out of attempts) every running experiment whose heartbeat is stale.

    Opens and disposes its own engine, so no database connection outlives the sweep in the worker's
    parent process (whose children are forked from it).

    Args:
        settings: the database and the lease/attempt limits.
        queue: where re-queued experiments are sent.

    Returns:
        The ids that were re-queued.
    """
    engine = make_engine(settings)
    sessions = make_session_factory(engine)
    requeued: list[int] = []
    try:
        with session_scope(sessions) as session:
            orphans = find_orphans(session, settings.lease_seconds)
        for orphan in orphans:
            with session_scope(sessions) as session:
                fate = release_orphan(session, orphan.id, settings.lease_seconds, settings.max_attempts)
                if fate is OrphanFate.requeued:
                    queue.enqueue(orphan.id)  # before the commit: a refused send rolls the release back
                    requeued.append(orphan.id)
            logger.warning(
                "experiment %s: worker %s stopped heartbeating (attempt %s): %s",
                orphan.id,
                orphan.worker,
                orphan.attempts,
                fate.value,
            )
    finally:
        engine.dispose()
    return requeued


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
