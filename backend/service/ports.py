"""What the service needs from the outside world, as protocols (tests pass doubles).

One queue port: every queue hands experiments to the workers (:class:`Queue`); a queue that can also
send other named tasks (TFLite benchmarks, crossover runs) is a :class:`TaskQueue`, and one that can
say whether its broker answers is a :class:`PingableQueue`. ``backend.queue.CeleryQueue`` is all three.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from backend.service.errors import QueueUnavailable


class Queue(Protocol):
    """Hands an experiment to the workers; only its id crosses the queue."""

    def enqueue(self, experiment_id: int) -> None:
        """Ask a worker to run the experiment.

        Raises:
            Exception: whatever the broker raises when it cannot take the message.
        """
        ...


@runtime_checkable
class TaskQueue(Queue, Protocol):
    """A queue that also sends named tasks with JSON arguments (benchmarks, crossover runs)."""

    def send(self, task: str, *args: Any) -> None:
        """Queue ``task(*args)``.

        Raises:
            Exception: whatever the broker raises when it cannot take the message.
        """
        ...


@runtime_checkable
class PingableQueue(Protocol):
    """A queue that can say whether its broker is reachable (used by the health check)."""

    def ping(self) -> bool: ...


def dispatch_saved(send: Callable[[], None], mark_failed: Callable[[str], None], saved: str) -> None:
    """Queue work whose row is already committed; if the queue refuses, mark the row failed and say so.

    Args:
        send: queues the work (e.g. ``lambda: queue.enqueue(id)``).
        mark_failed: records the failure on the saved row (and commits) given its message.
        saved: what was saved, for the error (e.g. ``"experiment 4"``).

    Raises:
        QueueUnavailable: the queue refused; the row stays, marked failed, so nothing is lost.
    """
    try:
        send()
    except Exception as exc:
        message = f"could not be queued: {type(exc).__name__}: {exc}"
        mark_failed(message)
        raise QueueUnavailable(f"{saved} was saved but {message}") from exc
