"""Back-off after a rejected cycle (``pruning.backoff``), on a hand-built model whose loss is exact.

The model computes y = x1 + x2 through 24 ReLU units that each carry 1/24 of the sum (unit i's incoming
weights scale with i + 1, so the weight-norm criterion removes the lowest-numbered units first), and it
trains with a vanishing learning rate: removing k units makes the held-out RMSE k/24 · √(E[s²]) ≈ 0.045 k,
whatever the seed. With a tolerance of 0.1 a cycle that removed 12 units is rejected, one that removed 1
is accepted.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from prunespec.spec import ExperimentSpec
from worker.engine.build import build_model, set_layer_weights
from worker.engine.cycle import Kept, ResumePoint, run_experiment
from worker.engine.data import load_dataset
from worker.engine.results import CycleResult, EpochRecord

UNITS = 24


def _spec(backoff: dict[str, Any] | None, max_cycles: int = 3) -> ExperimentSpec:
    pruning: dict[str, Any] = {
        "criterion": {"type": "weight_norm", "fraction": 0.5},
        "max_fraction": 0.5,
        "fold_constant": False,
        "tolerance": 0.1,
        "max_cycles": max_cycles,
    }
    if backoff is not None:
        pruning["backoff"] = backoff
    return ExperimentSpec.model_validate(
        {
            "name": "backoff",
            "seed": 1,
            "model": {
                "input_shape": [2],
                "layers": [
                    {"type": "dense", "name": "hidden", "units": UNITS, "activation": "relu"},
                    {"type": "dense", "name": "out", "units": 1},
                ],
            },
            "dataset": {"name": "sum", "train_samples": 400, "test_samples": 400},
            "training": {"optimizer": "sgd", "learning_rate": 1e-9, "batch_size": 400, "epochs": 1},
            "pruning": pruning,
        }
    )


def _weights() -> dict[str, list[np.ndarray]]:
    scale = np.arange(1, UNITS + 1, dtype=np.float32)
    hidden = np.stack([scale, scale]).astype(np.float32)  # unit i: relu((i + 1) · (x1 + x2))
    out = (1.0 / (UNITS * scale)).reshape(UNITS, 1).astype(np.float32)
    return {"hidden": [hidden, np.zeros(UNITS, np.float32)], "out": [out, np.zeros(1, np.float32)]}


class Handed:
    """Keeps each cycle's result and the model it handed to the next cycle."""

    def __init__(self) -> None:
        self.cycles: list[tuple[CycleResult, keras.Model | None]] = []

    def on_epoch(self, record: EpochRecord) -> None:
        return None

    def on_cycle(self, result: CycleResult, trained: keras.Model, pruned: keras.Model | None) -> None:
        if pruned is not None:
            copy = keras.models.clone_model(pruned)
            copy.set_weights(pruned.get_weights())
            pruned = copy
        self.cycles.append((result, pruned))

    def cancelled(self) -> bool:
        return False


def _run(spec: ExperimentSpec, reporter: Handed | None = None) -> Any:
    data = load_dataset(spec.dataset, seed=spec.seed)
    return run_experiment(spec, data, reporter, initial_weights=_weights())


def test_without_backoff_the_first_rejection_ends_the_run() -> None:
    result = _run(_spec(None))
    assert [c.accepted for c in result.cycles] == [True, False]
    assert result.stop_reason == "tolerance" and result.final_index == 0
    assert result.cycles[1].widths["hidden"] == UNITS - 12
    assert [c.pruned_from for c in result.cycles] == [None, 0]


def test_a_rejected_cycle_retries_from_the_kept_model_with_a_smaller_step() -> None:
    reporter = Handed()
    result = _run(_spec({"retries": 1, "factor": 0.1}, max_cycles=5), reporter)
    cycle0, rejected, retried = result.cycles[:3]
    # cycle 1 removes 12 units and is rejected; cycle 2 retries from cycle 0's model with one unit and
    # is kept; cycle 3 takes the full step again (11 units) and is rejected; cycle 4 retries from cycle 2
    assert [c.accepted for c in result.cycles] == [True, False, True, False, True]
    assert [c.widths["hidden"] for c in result.cycles] == [24, 12, 23, 12, 22]
    assert [c.pruned_from for c in result.cycles] == [None, 0, 0, 2, 2]
    assert result.stop_reason == "max_cycles" and result.final_index == 4
    # the rejected cycle's own model loses nothing; what it handed on is the backed-off kept model
    assert rejected.removed == {} and rejected.widths_after == rejected.widths
    handed = reporter.cycles[1][1]
    assert handed is not None and handed.get_layer("hidden").units == UNITS - 1
    assert retried.val_metric - cycle0.val_metric < 0.1 < rejected.val_metric - cycle0.val_metric


def test_retries_run_out_and_the_run_stops_at_the_kept_model() -> None:
    result = _run(_spec({"retries": 1, "factor": 0.5}))
    # the retry removes 6 units from cycle 0's model: still beyond the tolerance, and no retry is left
    assert [c.accepted for c in result.cycles] == [True, False, False]
    assert [c.widths["hidden"] for c in result.cycles] == [UNITS, UNITS - 12, UNITS - 6]
    assert result.stop_reason == "tolerance" and result.final_index == 0
    assert result.model is not None and result.model.get_layer("hidden").units == UNITS


def test_a_resumed_run_backs_off_from_the_kept_model() -> None:
    spec = _spec({"retries": 1, "factor": 0.1})
    reporter = Handed()
    whole = _run(spec, reporter)
    _, handed = reporter.cycles[0]
    assert handed is not None
    kept_model = build_model(spec.model, spec.training)  # cycle 0's model: sgd at 1e-9 left it as built
    set_layer_weights(kept_model, _weights())
    resumed = run_experiment(
        spec,
        load_dataset(spec.dataset, seed=spec.seed),
        resume=ResumePoint(
            cycle=1,
            model=handed,
            spec=whole.cycles[1].spec,
            baseline_metric=whole.cycles[0].val_metric,
            kept=Kept(0, kept_model, spec.model),
        ),
    )
    assert [c.accepted for c in resumed.cycles] == [False, True]
    assert [c.widths for c in resumed.cycles] == [c.widths for c in whole.cycles[1:]]
    assert [c.pruned_from for c in resumed.cycles] == [0, 0]
