"""Crossover requests are bounded by their total work, so one request cannot hold a worker for minutes."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest
from fastapi.testclient import TestClient

from backend.schemas_benchmarks import MAX_CROSSOVER_WORK, CrossoverCreate


class TaskQueue:
    """A queue double that can also send named tasks (the crossover route needs one)."""

    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []

    def enqueue(self, experiment_id: int) -> None:
        self.sent.append(("experiment", experiment_id))

    def send(self, task: str, *args: Any) -> None:
        self.sent.append((task, *args))


@pytest.fixture
def queue() -> TaskQueue:
    """Replaces the API fixtures' queue."""
    return TaskQueue()


def test_a_crossover_over_the_work_budget_is_refused_naming_the_product_and_the_limit(
    sqlite_client: TestClient, queue: TaskQueue
) -> None:
    body: dict[str, Any] = {"rows": 2048, "cols": 2048, "batch": 1024, "runs": 10_000, "warmup": 0}

    response = sqlite_client.post("/api/crossover", json=body)

    assert response.status_code == 422
    (issue,) = response.json()["detail"]
    assert issue["loc"] == ["body"]
    assert issue["msg"] == (
        "rows × cols × batch × (runs + warmup) × densities × backends = 2,048 × 2,048 × 1,024 × 10,000 × "
        "12 × 2 = 1.03e15; at most 5e10 per run: use fewer runs, densities, a smaller batch or kernel"
    )
    assert queue.sent == []


def test_the_default_crossover_of_the_largest_square_kernel_fits_the_budget() -> None:
    largest = CrossoverCreate(rows=2048, cols=2048)

    assert largest.work == 2048 * 2048 * 220 * 12 * 2 <= MAX_CROSSOVER_WORK


BASE: dict[str, Any] = {"rows": 1024, "cols": 1024, "densities": [1.0], "backends": ["tensorflow"]}
#: Timed rounds that fill the budget exactly with batch 100 and no warmup.
FULL_RUNS = MAX_CROSSOVER_WORK // (1024 * 1024 * 100)


def test_a_crossover_just_within_the_budget_is_accepted() -> None:
    assert CrossoverCreate(**BASE, batch=100, runs=FULL_RUNS, warmup=0).work <= MAX_CROSSOVER_WORK


@pytest.mark.parametrize(
    "change",
    [{"batch": 101}, {"warmup": 1}, {"densities": [0.5, 1.0]}, {"backends": ["tensorflow", "litert"]}],
    ids=["batch", "warmup", "densities", "backends"],
)
def test_the_budget_counts_every_factor(change: dict[str, Any]) -> None:
    request = {**BASE, "batch": 100, "runs": FULL_RUNS, "warmup": 0, **change}

    with pytest.raises(pydantic.ValidationError, match="at most 5e10 per run"):
        CrossoverCreate(**request)
