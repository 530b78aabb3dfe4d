"""Cost limits: what a spec is estimated to cost (from the spec alone) against the server's limits."""

from __future__ import annotations

from typing import Any

import pytest

from backend.limits import CostLimits, limit_checks, over_limits, training_examples_epochs
from prunespec.costs import format_count, model_cost
from prunespec.spec import ExperimentSpec

DENSE_8 = {"type": "dense", "units": 8}
LIMITS = CostLimits(parameters=1000, flops_per_example=2000, training_examples_epochs=10_000, wall_seconds=60)


def _spec(**changes: Any) -> ExperimentSpec:
    data: dict[str, Any] = {
        "name": "t",
        "model": {"input_shape": [2], "layers": [DENSE_8, {"type": "dense", "units": 1}]},
        "dataset": {"name": "sum", "train_samples": 100, "test_samples": 10},
        "training": {"epochs": 3, "first_epochs": 7},
        "pruning": {"max_cycles": 4},
    }
    data.update(changes)
    return ExperimentSpec.model_validate(data)


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "0"), (999_999, "999,999"), (1_000_000, "1e6"), (50_000_000, "5e7"), (1_090_921_709_569, "1.09e12")],
)
def test_counts_are_written_with_separators_below_a_million_and_powers_above(value: int, text: str) -> None:
    assert format_count(value) == text


def test_training_work_counts_cycle_zero_and_every_retraining() -> None:
    assert training_examples_epochs(_spec()) == 100 * (7 + 3 * 3)


@pytest.mark.parametrize(
    ("dataset", "examples"),
    [
        ({"name": "mnist"}, 60_000),
        ({"name": "fashion-mnist", "train_samples": 500}, 500),
        ({"name": "npz", "path": "data.npz", "train_samples": 40}, 40),
        ({"name": "npz", "path": "data.npz"}, None),
    ],
    ids=["mnist-whole", "fashion-some", "npz-counted", "npz-unknown"],
)
def test_training_examples_come_from_the_dataset(dataset: dict[str, Any], examples: int | None) -> None:
    model = {
        "input_shape": [28, 28, 1],
        "layers": [{"type": "flatten"}, {"type": "dense", "units": 4}, {"type": "dense", "units": 10}],
    }
    spec = _spec(model=model, dataset=dataset, training={"epochs": 1, "loss": "crossentropy"})

    assert training_examples_epochs(spec) == (None if examples is None else examples * 4)


def test_checks_compare_the_cost_model_with_each_limit() -> None:
    spec = _spec()
    cost = model_cost(spec.model)

    checks = {check.name: check for check in limit_checks(spec, LIMITS)}

    assert (checks["parameters"].value, checks["parameters"].within) == (cost.params, True)
    assert (checks["flops_per_example"].value, checks["flops_per_example"].within) == (cost.flops, True)
    assert checks["training_examples_epochs"].value == 1600
    assert (checks["wall_seconds"].value, checks["wall_seconds"].limit) == (None, 60)
    assert over_limits(spec, LIMITS) == []


def test_each_exceeded_limit_names_its_field_and_value() -> None:
    tight = CostLimits(parameters=10, flops_per_example=10, training_examples_epochs=1599, wall_seconds=60)

    exceeded = over_limits(_spec(), tight)

    assert [field for field, _ in exceeded] == [("model",), ("model",), ("training",)]
    assert exceeded[0][1] == (
        "model has 33 parameters; this server allows at most 10 (PRUNELAB_MAX_PARAMETERS)"
    )
    assert exceeded[1][1].startswith("model costs 57 FLOPs per example; this server allows at most 10")
    assert "1,600 (100 examples × 16 epochs)" in exceeded[2][1]


def test_an_unknown_dataset_size_is_never_over_the_training_limit() -> None:
    spec = _spec(dataset={"name": "npz", "path": "data.npz"})

    check = next(c for c in limit_checks(spec, LIMITS) if c.name == "training_examples_epochs")

    assert (check.value, check.within) == (None, True)
