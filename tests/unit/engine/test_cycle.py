"""The trimming loop end to end on tiny models and data."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest

from prunespec.spec import ExperimentSpec
from worker.engine.cycle import ExperimentCancelled, ResumePoint, run_cycles
from worker.engine.data import Dataset, load_dataset
from worker.engine.results import CycleResult, EpochRecord


def _sum_spec(**overrides: Any) -> ExperimentSpec:
    spec: dict[str, Any] = {
        "name": "tiny-sum",
        "seed": 3,
        "model": {
            "input_shape": [2],
            "layers": [
                {"type": "dense", "name": "hidden", "units": 24, "activation": "relu"},
                {"type": "dense", "name": "out", "units": 1},
            ],
        },
        "dataset": {"name": "sum", "train_samples": 2000, "test_samples": 500},
        "training": {
            "optimizer": "adam",
            "learning_rate": 0.01,
            "batch_size": 200,
            "epochs": 2,
            "loss": "mse",
        },
        "pruning": {"criterion": {"type": "apoz", "k": 0.0}, "max_fraction": 0.5, "max_cycles": 3},
    }
    for key, value in overrides.items():
        section, _, field = key.partition("__")
        if field:
            spec[section] = {**spec[section], field: value}
        else:
            spec[section] = value
    return ExperimentSpec.model_validate(spec)


def _data(spec: ExperimentSpec) -> Dataset:
    return load_dataset(spec.dataset, seed=spec.seed)


def _copy(model: keras.Model) -> keras.Model:
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


class Recorder:
    """Keeps what the engine reports; cancels after ``cancel_after`` epochs."""

    def __init__(self, cancel_after: int | None = None):
        self.epochs: list[EpochRecord] = []
        self.cycles: list[tuple[CycleResult, keras.Model, keras.Model | None]] = []
        self.cancel_after = cancel_after

    def on_epoch(self, record: EpochRecord) -> None:
        self.epochs.append(record)

    def on_cycle(self, result: CycleResult, trained: keras.Model, pruned: keras.Model | None) -> None:
        # the engine goes on training the pruned model, so keep copies as they were handed over
        self.cycles.append((result, _copy(trained), None if pruned is None else _copy(pruned)))

    def cancelled(self) -> bool:
        return self.cancel_after is not None and len(self.epochs) >= self.cancel_after


def test_cycles_shrink_the_model_and_report_everything() -> None:
    spec = _sum_spec()
    recorder = Recorder()

    result = run_cycles(spec, _data(spec), recorder)

    assert [c.index for c in result.cycles] == [0, 1, 2]
    assert result.stop_reason == "max_cycles"
    widths = [c.widths["hidden"] for c in result.cycles]
    assert widths[0] == 24 and widths[1] < widths[0] and widths[2] < widths[1]
    for before, after in zip(result.cycles, result.cycles[1:], strict=False):
        assert before.widths_after == after.widths
        assert before.widths["hidden"] - len(before.removed["hidden"]) == after.widths["hidden"]
        assert after.params < before.params and after.flops < before.flops
    assert result.cycles[-1].removed == {}  # the last cycle trains and measures but does not prune
    assert len(recorder.epochs) == 3 * 2 and len(recorder.cycles) == 3
    assert all(c.stats["hidden"].units == c.widths["hidden"] for c in result.cycles)
    assert [layer.units for layer in result.model.layers if isinstance(layer, keras.layers.Dense)] == [
        widths[2],
        1,
    ]
    assert result.final.metric_name == "rmse" and np.isfinite(result.final.val_metric)
    assert recorder.cycles[-1][2] is None and recorder.cycles[0][2] is not None


def test_a_seed_reproduces_a_run() -> None:
    spec = _sum_spec(pruning__max_cycles=2)
    first = run_cycles(spec, _data(spec))
    second = run_cycles(spec, _data(spec))
    assert [c.widths for c in first.cycles] == [c.widths for c in second.cycles]
    assert [c.removed for c in first.cycles] == [c.removed for c in second.cycles]
    assert first.cycles[-1].val_loss == pytest.approx(second.cycles[-1].val_loss, rel=1e-6)


def test_stops_when_a_cycle_removes_nothing() -> None:
    spec = _sum_spec(pruning__criterion={"type": "none"}, pruning__fold_constant=False)
    result = run_cycles(spec, _data(spec))
    assert len(result.cycles) == 1 and result.stop_reason == "nothing_removed"
    assert result.cycles[0].widths_after == result.cycles[0].widths


def test_tolerance_rejects_a_worse_cycle_and_keeps_the_previous_model() -> None:
    # huge distortion after cycle 0 wrecks the weights; one short epoch cannot repair them
    spec = _sum_spec(
        pruning__distortion=10.0, pruning__tolerance=0.0, training__epochs=1, training__first_epochs=3
    )
    result = run_cycles(spec, _data(spec))
    assert result.stop_reason == "tolerance"
    assert [c.accepted for c in result.cycles] == [True, False]
    assert result.final_position == 0
    assert result.model.get_layer("hidden").units == result.cycles[0].widths["hidden"]


def test_cancel_during_the_first_cycle_raises() -> None:
    spec = _sum_spec()
    with pytest.raises(ExperimentCancelled):
        run_cycles(spec, _data(spec), Recorder(cancel_after=1))


def test_cancel_later_keeps_finished_cycles() -> None:
    spec = _sum_spec()
    recorder = Recorder(cancel_after=3)  # cycle 0 has 2 epochs; cancel in cycle 1's first epoch
    result = run_cycles(spec, _data(spec), recorder)
    assert result.stop_reason == "cancelled"
    assert len(result.cycles) == 1 and result.final_position == 0
    assert len(recorder.epochs) == 3  # stopped within one epoch of the cancel


def test_snapshot_finetune_trains_only_biases_after_pruning() -> None:
    spec = _sum_spec(pruning__finetune="snapshot", pruning__max_cycles=2)
    recorder = Recorder()
    run_cycles(spec, _data(spec), recorder)
    (_, _, handed_over), (_, trained, _) = recorder.cycles
    assert handed_over is not None
    before, after = handed_over.get_layer("hidden").get_weights(), trained.get_layer("hidden").get_weights()
    np.testing.assert_array_equal(after[0], before[0])  # kernel frozen
    assert not np.array_equal(after[1], before[1])  # bias trained


def test_resume_continues_like_an_uninterrupted_run() -> None:
    spec = _sum_spec()
    recorder = Recorder()
    whole = run_cycles(spec, _data(spec), recorder)
    first_result, _, handed_over = recorder.cycles[0]
    assert handed_over is not None
    resumed = run_cycles(
        spec,
        _data(spec),
        resume=ResumePoint(
            cycle=1,
            model=handed_over,
            spec=whole.cycles[1].spec,
            baseline_metric=first_result.val_metric,
        ),
    )
    assert [c.index for c in resumed.cycles] == [1, 2]
    assert [c.widths for c in resumed.cycles] == [c.widths for c in whole.cycles[1:]]
    assert resumed.cycles[-1].val_loss == pytest.approx(whole.cycles[-1].val_loss, rel=1e-5)


def test_llr_head_and_group_lasso_train_a_classifier() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, (3, 4))
    labels = rng.integers(0, 3, 900)
    x = (centres[labels] + rng.normal(0, 0.5, (900, 4))).astype("float32")
    data = Dataset(x[:600], labels[:600], x[600:], labels[600:], num_classes=3, description="blobs")
    spec = ExperimentSpec.model_validate(
        {
            "name": "blobs",
            "model": {
                "input_shape": [4],
                "layers": [
                    {"type": "dense", "name": "hidden", "units": 16, "activation": "relu"},
                    {"type": "dense", "name": "logits", "units": 3},
                ],
            },
            "dataset": {"name": "npz", "path": "unused.npz"},
            "training": {
                "loss": "crossentropy",
                "head": "llr",
                "learning_rate": 0.02,
                "epochs": 5,
                "batch_size": 64,
                "group_lasso": 0.01,
                "l2": 0.001,
            },
            "pruning": {"criterion": "activation_count", "max_cycles": 2},
        }
    )
    result = run_cycles(spec, data)
    assert result.final.metric_name == "accuracy"
    assert result.final.val_metric > 0.9


@pytest.mark.parametrize(("min_units", "distorted"), [(1, True), (12, False)])
def test_distortion_spares_a_layer_already_at_min_units(min_units: int, distorted: bool) -> None:
    # apoz k=0 with max_fraction 0.5 halves the 24 units; at min_units 12 no unit can go next cycle,
    # so noise there would only hurt: the pruned layer keeps its trained weights exactly
    spec = _sum_spec(pruning__distortion=1.0, pruning__min_units=min_units, pruning__max_cycles=2)
    recorder = Recorder()
    run_cycles(spec, _data(spec), recorder)
    result, trained, pruned = recorder.cycles[0]
    assert pruned is not None and pruned.get_layer("hidden").units == 12
    kept = [u for u in range(24) if u not in result.removed["hidden"]]
    kernel = trained.get_layer("hidden").get_weights()[0][:, kept]
    same = np.array_equal(pruned.get_layer("hidden").get_weights()[0], kernel)
    assert same is not distorted


@pytest.mark.parametrize(("schedule", "final_rate"), [("constant", 0.01), ("cosine", 0.0)])
def test_lr_schedule_runs_over_each_cycle(schedule: str, final_rate: float) -> None:
    spec = _sum_spec(training__lr_schedule=schedule, pruning__max_cycles=2)
    result = run_cycles(spec, _data(spec))
    optimizer = result.model.optimizer
    assert int(optimizer.iterations) == 2 * 2000 // 200  # the second cycle's own optimiser
    assert float(optimizer.learning_rate) == pytest.approx(final_rate, abs=1e-7)
