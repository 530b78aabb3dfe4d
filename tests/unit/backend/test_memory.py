"""The training memory estimate (backend.memory): each part against a hand count, and the limit check."""

from __future__ import annotations

import os
from typing import Any

import pytest

from backend import memory
from backend.memory import MIB, RUNTIME_BYTES, MemoryLimitExceeded, check_memory, training_memory
from prunespec.spec import ExperimentSpec


def experiment(**training: Any) -> ExperimentSpec:
    """2 → Dense 16 ReLU → Dense 1 on 2,000 + 500 sum examples."""
    return ExperimentSpec.model_validate(
        {
            "name": "tiny",
            "model": {
                "input_shape": [2],
                "layers": [
                    {"type": "dense", "name": "hidden", "units": 16, "activation": "relu"},
                    {"type": "dense", "name": "out", "units": 1},
                ],
            },
            "dataset": {"name": "sum", "train_samples": 2000, "test_samples": 500},
            "training": {"batch_size": 200, **training},
        }
    )


def test_each_part_matches_a_hand_count() -> None:
    estimate = training_memory(experiment(optimizer="adam"))

    params = 2 * 16 + 16 + 16 * 1 + 1  # 65
    assert estimate.params == params
    assert estimate.weights == 2 * params * 4  # the trained model and the pruned copy
    assert estimate.gradients == params * 4
    assert estimate.optimizer == 2 * params * 4  # adam: two moments
    assert estimate.activations == 2 * 200 * (2 + 16 + 1) * 4  # kept values and their gradients
    assert estimate.data == (2000 + 500) * (2 + 1) * 4
    assert estimate.runtime == RUNTIME_BYTES
    assert estimate.total == 520 + 260 + 520 + 30_400 + 30_000 + RUNTIME_BYTES
    assert estimate.as_dict()["total"] == estimate.total


@pytest.mark.parametrize(("optimizer", "slots"), [("sgd", 0), ("momentum", 1), ("rmsprop", 1), ("adam", 2)])
def test_optimizer_state_counts_its_slots(optimizer: str, slots: int) -> None:
    assert training_memory(experiment(optimizer=optimizer)).optimizer == slots * 65 * 4


def test_activations_grow_with_the_batch_size() -> None:
    small = training_memory(experiment(batch_size=10)).activations
    large = training_memory(experiment(batch_size=1000)).activations
    assert large == 100 * small


def test_mnist_counts_its_full_sets_when_no_sizes_are_given() -> None:
    spec = ExperimentSpec.model_validate(
        {
            "name": "lenet",
            "model": "lenet-300-100",
            "dataset": {"name": "mnist"},
            "training": {"loss": "crossentropy"},
        }
    )
    assert training_memory(spec).data == (60_000 + 10_000) * (784 + 10) * 4


def test_a_model_above_the_limit_is_refused_naming_the_estimate_and_the_limit() -> None:
    spec = ExperimentSpec.model_validate(
        {
            "name": "wide",
            "model": {
                "input_shape": [2],
                "layers": [
                    {"type": "dense", "units": 16384, "activation": "relu"},
                    {"type": "dense", "units": 16384, "activation": "relu"},
                    {"type": "dense", "units": 1},
                ],
            },
            "dataset": {"name": "sum", "train_samples": 10, "test_samples": 10},
        }
    )
    estimate = training_memory(spec)
    assert estimate.params == 2 * 16384 + 16384 + 16384 * 16384 + 16384 + 16384 + 1

    with pytest.raises(MemoryLimitExceeded) as refused:
        check_memory(spec, limit_mb=2048)

    message = str(refused.value)
    assert f"estimated training memory {estimate.total / MIB:,.0f} MiB" in message
    assert "268,517,377 parameters" in message and "weights 2,049 MiB" in message
    assert "exceeds the worker's limit of 2,048 MiB (worker_memory_limit_mb)" in message
    assert check_memory(spec, limit_mb=8192) == estimate  # fits a larger limit


def test_limit_zero_means_the_machines_memory(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    monkeypatch.setattr(memory, "CGROUP_MEMORY_MAX", tmp_path / "absent")
    assert memory.memory_limit_bytes(0) == physical
    assert memory.memory_limit_bytes(100) == 100 * MIB
    check_memory(experiment(), limit_mb=0)  # a tiny model fits any machine

    cgroup = tmp_path / "memory.max"
    cgroup.write_text("1073741824\n")
    monkeypatch.setattr(memory, "CGROUP_MEMORY_MAX", cgroup)
    assert memory.memory_limit_bytes(0) == min(physical, 2**30)
    cgroup.write_text("max\n")
    assert memory.memory_limit_bytes(0) == physical
