"""What the service needs from the outside world, as protocols (tests pass doubles)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


class Queue(Protocol):
    """Hands an experiment to the workers; only its id crosses the queue."""

    def enqueue(self, experiment_id: int) -> None:
        """Ask a worker to run the experiment.

        Raises:
            Exception: whatever the broker raises when it cannot take the message.
        """
        ...


@runtime_checkable
class PingableQueue(Protocol):
    """A queue that can say whether its broker is reachable (used by the health check)."""

    def ping(self) -> bool: ...
