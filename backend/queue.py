"""The Celery app's configuration and the web side's handle on the queue.

Only an experiment's id crosses the queue (JSON, nothing else accepted). Tasks are acknowledged late
and re-queued when their worker process is lost, one at a time per worker process, so a crash never
silently swallows an experiment; the worker's state machine (``backend.service.runs``) turns a
duplicate delivery into a no-op. This module never imports TensorFlow or ``worker.engine``: the API
process imports it to enqueue.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery

from backend.settings import Settings

#: The task a worker runs for one experiment; its only argument is the experiment id.
RUN_EXPERIMENT_TASK = "prunelab.run_experiment"
#: The queue experiments go to (start workers with ``-Q prunelab``).
EXPERIMENT_QUEUE = "prunelab"
#: Seconds ``CeleryQueue.ping`` and a publish wait for the broker before giving up.
BROKER_TIMEOUT_SECONDS = 3.0
#: Retries of one publish before the broker counts as unavailable.
SEND_RETRY_POLICY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1.0}
#: Seconds a send to the embedded SQLite broker waits while a worker's poll holds the file's lock
#: (SQLite's default, 5 s, refused submissions on a loaded machine: "could not be queued").
SQLITE_BROKER_BUSY_SECONDS = 30.0
#: Broker URL schemes whose transport understands ``visibility_timeout`` (the others pass their
#: transport options elsewhere: the SQLAlchemy transport hands them to ``create_engine``).
_VISIBILITY_SCHEMES = ("redis", "rediss", "sentinel", "sqs")

logger = logging.getLogger(__name__)


def _transport_options(settings: Settings) -> dict[str, Any]:
    """Broker transport options for the configured broker.

    Args:
        settings: ``broker_url`` and ``broker_visibility_timeout``.

    Returns:
        ``visibility_timeout`` (how long an unacknowledged message waits before another worker gets
        it) for Redis-like brokers; for the embedded SQLite broker, how long a writer waits for the
        file's lock (SQLite's busy timeout, :data:`SQLITE_BROKER_BUSY_SECONDS`); nothing for the others.
    """
    scheme = settings.broker_url.split("://", 1)[0].lower()
    if scheme in _VISIBILITY_SCHEMES:
        return {"visibility_timeout": settings.broker_visibility_timeout}
    if scheme == "sqla+sqlite":
        return {"connect_args": {"timeout": SQLITE_BROKER_BUSY_SECONDS}}
    return {}


#: Resident memory (KiB) past which a worker process is replaced by a fresh one after its task. TensorFlow
#: keeps what it traced and XLA compiled for every pruned model's shapes for the life of the process
#: (measured: +5 to +18 MiB of resident memory per new model's statistics pass, 30 LeNet-5 cycles), so a
#: long-lived worker would grow without bound; the replacement loses only the process's data cache.
WORKER_MAX_MEMORY_KIB = 4 * 2**20


def make_celery(settings: Settings) -> Celery:
    """A Celery app for prunelab's broker.

    Args:
        settings: ``broker_url``, ``soft_time_limit``, ``time_limit`` and ``broker_visibility_timeout``.

    Returns:
        An app with no result backend (results live in the database), late acknowledgement, re-queue
        on a lost worker process, one prefetched task per process, a process replaced once it holds
        more than :data:`WORKER_MAX_MEMORY_KIB`, the time limits from the settings, and JSON as the
        only serializer.
    """
    app = Celery("prunelab", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_max_memory_per_child=WORKER_MAX_MEMORY_KIB,
        task_soft_time_limit=settings.soft_time_limit,
        task_time_limit=settings.time_limit,
        broker_transport_options=_transport_options(settings),
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        event_serializer="json",
        task_default_queue=EXPERIMENT_QUEUE,
        task_routes={RUN_EXPERIMENT_TASK: {"queue": EXPERIMENT_QUEUE}},
        enable_utc=True,
    )
    return app


class BrokerUnavailable(Exception):
    """The broker could not be reached or refused a message.

    Its message names no host, port or user: callers put it into answers and experiment rows. The
    broker's own error is logged where it happened, and chained as ``__cause__``.
    """

    def __init__(self) -> None:
        super().__init__("the broker did not accept the message (details in the server log)")


class CeleryQueue:
    """Hands experiments and other tasks to the Celery workers (a ``backend.service.ports.TaskQueue``
    and ``PingableQueue``).

    Args:
        settings: where the broker is, and its options (see :func:`make_celery`).
        app: an app made by :func:`make_celery` to send through (a worker passes its own). Default: a
            new one from ``settings``.
    """

    def __init__(self, settings: Settings, app: Celery | None = None):
        self.settings = settings
        self.app = app if app is not None else make_celery(settings)

    def enqueue(self, experiment_id: int) -> None:
        """Ask a worker to run an experiment (call only after its row is committed).

        Args:
            experiment_id: the experiment's id, the task's only argument.

        Raises:
            BrokerUnavailable: the broker cannot be reached or refused the message (after a few bounded
                retries).
        """
        self.send(RUN_EXPERIMENT_TASK, int(experiment_id))

    def send(self, task: str, *args: Any) -> None:
        """Queue ``task(*args)`` on the experiments' queue, with a few bounded retries.

        Args:
            task: the task's name, e.g. ``RUN_EXPERIMENT_TASK``.
            *args: its JSON arguments.

        Raises:
            BrokerUnavailable: the broker cannot be reached or refused the message; its own error (which
                names the broker's host) is logged, not passed on.
        """
        try:
            self.app.send_task(
                task,
                args=list(args),
                queue=EXPERIMENT_QUEUE,
                retry=True,
                retry_policy=SEND_RETRY_POLICY,
            )
        except Exception as exc:
            logger.warning("could not queue %s%s: %s: %s", task, tuple(args), type(exc).__name__, exc)
            raise BrokerUnavailable() from exc

    def ping(self, timeout: float = BROKER_TIMEOUT_SECONDS) -> bool:
        """Whether the broker answers.

        Args:
            timeout: seconds to wait for the broker, in total. Default ``BROKER_TIMEOUT_SECONDS``.

        Returns:
            True when a connection was established within ``timeout``, else False (never raises).
        """
        try:
            with self.app.connection_for_write(connect_timeout=timeout) as connection:
                connection.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)
                return bool(connection.connected)
        except Exception:  # any failure to connect means "not reachable"
            return False
