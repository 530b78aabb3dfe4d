"""Back-off after a rejected cycle (``pruning.backoff``), on the exact case of ``tests/backoff_case.py``."""

from __future__ import annotations

from typing import Any

import keras

from prunespec.spec import ExperimentSpec
from tests.backoff_case import UNITS, backoff_spec, backoff_weights
from worker.engine.build import build_model, set_layer_weights
from worker.engine.cycle import Kept, ResumePoint, run_cycles
from worker.engine.data import load_dataset
from worker.engine.results import CycleResult, EpochRecord


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
    return run_cycles(spec, data, reporter, initial_weights=backoff_weights())


def test_without_backoff_the_first_rejection_ends_the_run() -> None:
    result = _run(backoff_spec(None))
    assert [c.accepted for c in result.cycles] == [True, False]
    assert result.stop_reason == "tolerance" and result.final_position == 0
    assert result.cycles[1].widths["hidden"] == UNITS - 12
    assert [c.pruned_from for c in result.cycles] == [None, 0]


def test_a_rejected_cycle_retries_from_the_kept_model_with_a_smaller_step() -> None:
    reporter = Handed()
    result = _run(backoff_spec({"retries": 1, "factor": 0.1}, max_cycles=5), reporter)
    cycle0, rejected, retried = result.cycles[:3]
    # cycle 1 removes 12 units and is rejected; cycle 2 retries from cycle 0's model with one unit and
    # is kept; cycle 3 takes the full step again (11 units) and is rejected; cycle 4 retries from cycle 2
    assert [c.accepted for c in result.cycles] == [True, False, True, False, True]
    assert [c.widths["hidden"] for c in result.cycles] == [24, 12, 23, 12, 22]
    assert [c.pruned_from for c in result.cycles] == [None, 0, 0, 2, 2]
    assert result.stop_reason == "max_cycles" and result.final_position == 4
    # the rejected cycle's own model loses nothing; what it handed on is the backed-off kept model
    assert rejected.removed == {} and rejected.widths_after == rejected.widths
    handed = reporter.cycles[1][1]
    assert handed is not None and handed.get_layer("hidden").units == UNITS - 1
    assert retried.val_metric - cycle0.val_metric < 0.1 < rejected.val_metric - cycle0.val_metric


def test_retries_run_out_and_the_run_stops_at_the_kept_model() -> None:
    result = _run(backoff_spec({"retries": 1, "factor": 0.5}))
    # the retry removes 6 units from cycle 0's model: still beyond the tolerance, and no retry is left
    assert [c.accepted for c in result.cycles] == [True, False, False]
    assert [c.widths["hidden"] for c in result.cycles] == [UNITS, UNITS - 12, UNITS - 6]
    assert result.stop_reason == "tolerance" and result.final_position == 0
    assert result.model is not None and result.model.get_layer("hidden").units == UNITS


def test_a_resumed_run_backs_off_from_the_kept_model() -> None:
    spec = backoff_spec({"retries": 1, "factor": 0.1})
    reporter = Handed()
    whole = _run(spec, reporter)
    _, handed = reporter.cycles[0]
    assert handed is not None
    kept_model = build_model(spec.model, spec.training)  # cycle 0's model: sgd at 1e-9 left it as built
    set_layer_weights(kept_model, backoff_weights())
    resumed = run_cycles(
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
