"""A queue double for the hardening tests: it takes experiments and benchmark/crossover tasks alike, so
every route (the benchmark routes included) gets as far as validating its input."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class TasksAndExperiments:
    """Records enqueued experiment ids and sent tasks.

    Attributes:
        ids: enqueued experiment ids in order.
        sent: ``(task name, args)`` of each sent task.
    """

    ids: list[int] = field(default_factory=list)
    sent: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)

    def enqueue(self, experiment_id: int) -> None:
        self.ids.append(experiment_id)

    def send(self, task: str, *args: Any) -> None:
        self.sent.append((task, args))
