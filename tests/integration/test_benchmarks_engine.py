"""The benchmarking module (``worker.benchmarking``) on real models: conversion failures become failed
results with the converter's reason, the rest are checked, counted and timed together; and the
``prunelab bench`` and ``prunelab crossover`` commands in this process.

No database and no worker here. A model the converter genuinely refuses (``erfinv``, which has no TFLite
builtin) cannot come from a spec, so its failure path is tested at this level.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from backend.cli import main
from prunespec.spec import BenchmarkSpec, ExperimentSpec
from worker.benchmarking import (
    BenchmarkCancelled,
    BenchmarkInputs,
    BenchmarkModel,
    benchmark_cycles,
    experiment_inputs,
    random_sample,
)
from worker.engine.bits import nominal_bits
from worker.engine.build import build_model, model_to_spec
from worker.engine.training import objective

SETTINGS = {"runs": 30, "warmup": 3}


def sum_spec(units: int, **benchmark: object) -> ExperimentSpec:
    """A summation net with ``units`` hidden ReLU units on 300 generated examples."""
    return ExperimentSpec.model_validate(
        {
            "name": "sum",
            "model": {
                "input_shape": [2],
                "layers": [
                    {"type": "dense", "name": "hidden", "units": units, "activation": "relu"},
                    {"type": "dense", "name": "out", "units": 1},
                ],
            },
            "dataset": {"name": "sum", "train_samples": 200, "test_samples": 100},
            "benchmark": {**SETTINGS, **benchmark},
        }
    )


def trained_like(spec: ExperimentSpec) -> keras.Model:
    """The spec's model with seeded random weights (what a cycle would hand over)."""
    keras.utils.set_random_seed(3)
    return build_model(spec.model)


def erfinv_model() -> keras.Model:
    inputs = keras.Input((2,), name="input")
    outputs = keras.layers.Lambda(keras.ops.erfinv, name="erfinv")(inputs)
    return keras.Model(inputs, outputs, name="uses_erfinv")


def test_a_refused_conversion_is_a_failed_result_and_the_other_models_are_timed() -> None:
    spec = sum_spec(16, formats=["float32", "int8_dynamic"])
    wide, narrow = trained_like(spec), trained_like(sum_spec(4))
    models = [
        BenchmarkModel(0, wide, spec.model),
        BenchmarkModel(1, erfinv_model()),
        BenchmarkModel(2, narrow, model_to_spec(narrow)),
    ]

    run = benchmark_cycles(models, spec.benchmark, experiment_inputs(spec))

    results = {(r.cycle_index, r.format): r for r in run.results}
    assert list(results) == [(c, f) for c in (0, 1, 2) for f in ("float32", "int8_dynamic")]
    for fmt in ("float32", "int8_dynamic"):
        refused = results[(1, fmt)]
        assert (refused.status, refused.flatbuffer, refused.latency) == ("failed", None, None)
        assert refused.error is not None
        assert refused.error.startswith(f"cannot convert model 'uses_erfinv' to {fmt} TFLite: ")
        assert "Erfinv" in refused.error
    for cycle in (0, 2):
        result = results[(cycle, "float32")]
        assert result.status == "ok" and result.error is None
        assert result.latency is not None and result.latency.runs == 30
        assert result.flatbuffer is not None and result.flatbuffer[4:8] == b"TFL3"
        assert result.keras is not None and result.tflite is not None
        assert result.tflite.metric == pytest.approx(result.keras.metric, rel=1e-4)  # float32 is exact
    assert results[(0, "float32")].nominal_bits == nominal_bits(spec.model, "float32").total_bits == 32 * 65
    assert results[(2, "int8_dynamic")].nominal_bits == 32 * 17  # 4-unit kernels are too small to quantise
    # the baseline (cycle 0) against the final model (cycle 2), from the same interleaved rounds
    assert run.latency_speedup is not None and run.latency_speedup > 0
    records = {(r.cycle_index, r.format): r for r in run.records()}
    assert (
        records[(1, "float32")].error == results[(1, "float32")].error
        and records[(1, "float32")].tflite is None
    )
    baseline = results[(0, "float32")].latency
    assert baseline is not None and records[(0, "float32")].latency_median_us == baseline.median_us


def test_int8_full_without_training_data_fails_with_the_reason_and_float32_still_runs() -> None:
    spec = sum_spec(8, formats=["float32", "int8_full"])
    inputs = BenchmarkInputs(x_sample=random_sample((2,)), data_error="DatasetError: no-such.npz is missing")

    run = benchmark_cycles([BenchmarkModel(0, trained_like(spec), spec.model)], spec.benchmark, inputs)

    float32, int8_full = run.results
    assert float32.status == "ok" and float32.latency is not None
    assert (float32.keras, float32.tflite) == (None, None)  # no test data: no fidelity
    assert int8_full.status == "failed" and int8_full.error is not None
    assert "representative inputs" in int8_full.error and "no-such.npz is missing" in int8_full.error
    assert run.latency_speedup == 1.0  # one model is its own baseline and final model


def test_int8_full_is_calibrated_on_the_experiments_training_inputs() -> None:
    spec = sum_spec(8, formats=["int8_full"], fidelity_samples=50)
    inputs = experiment_inputs(spec)

    run = benchmark_cycles([BenchmarkModel(0, trained_like(spec), spec.model)], spec.benchmark, inputs)

    assert inputs.x_test is not None and len(inputs.x_test) == 50
    assert inputs.representative is not None and len(inputs.representative) == 200
    (result,) = run.results
    assert result.status == "ok" and result.keras is not None and result.tflite is not None
    assert result.tflite.loss == pytest.approx(result.keras.loss, rel=0.2, abs=1e-3)


def test_a_missing_model_fails_every_format_with_its_reason() -> None:
    settings = BenchmarkSpec.model_validate({**SETTINGS, "formats": ["float32", "float16"]})
    inputs = BenchmarkInputs(x_sample=random_sample((2,)))

    run = benchmark_cycles(
        [BenchmarkModel(4, None, error="cannot load the trained model: bad zip")], settings, inputs
    )

    assert [(r.cycle_index, r.format, r.status, r.error) for r in run.results] == [
        (4, "float32", "failed", "cannot load the trained model: bad zip"),
        (4, "float16", "failed", "cannot load the trained model: bad zip"),
    ]
    assert run.latency_speedup is None


def test_cancelling_stops_before_the_next_conversion() -> None:
    spec = sum_spec(4)
    asked: list[int] = []

    def cancelled() -> bool:
        asked.append(1)
        return len(asked) > 1

    models = [BenchmarkModel(i, trained_like(spec), spec.model) for i in range(3)]
    with pytest.raises(BenchmarkCancelled, match="cycle 1"):
        benchmark_cycles(models, spec.benchmark, BenchmarkInputs(random_sample((2,))), cancelled=cancelled)


def test_fidelity_uses_the_objective_of_the_spec() -> None:
    spec = sum_spec(4, fidelity_samples=7)
    inputs = experiment_inputs(spec)
    assert inputs.goal is not None and inputs.goal.metric_name == objective(spec.training).metric_name
    assert inputs.x_test is not None and inputs.y_test is not None
    assert inputs.x_sample.shape == (1, 2) and np.array_equal(inputs.x_sample, inputs.x_test[:1])
    assert (len(inputs.x_test), len(inputs.y_test)) == (7, 7)


# --------------------------------------------------------------------------------------------- the commands


def test_prunelab_bench_prints_each_format_of_a_saved_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "model.keras"
    trained_like(sum_spec(8)).save(path)

    code = main(["bench", str(path), "--formats", "float32", "int8_full", "--runs", "5", "--data", "sum"])

    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    header = next(i for i, line in enumerate(lines) if line.startswith("format"))
    assert "keras rmse" in lines[header] and "tflite rmse" in lines[header]
    assert [line.split()[:2] for line in lines[header + 1 :]] == [["float32", "ok"], ["int8_full", "ok"]]


def test_prunelab_bench_sparsity_prunes_connections_and_benchmarks_both_models(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, pruned_path = tmp_path / "model.keras", tmp_path / "pruned.keras"
    original = trained_like(sum_spec(64))
    original.save(path)
    argv = ["bench", str(path), "--data", "sum", "--formats", "float32", "--runs", "5"]

    code = main([*argv, "--sparsity", "0.9", "--finetune-epochs", "1", "--save-pruned", str(pruned_path)])

    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["model", "format"])
    rows = [line.split() for line in lines[header + 1 : header + 3]]
    assert [row[:3] for row in rows] == [["0", "float32", "ok"], ["1", "float32", "ok"]]
    stored = [int(row[5].replace(",", "")) for row in rows]
    assert stored[1] < stored[0] / 3  # the sparse encoding keeps about a tenth of every kernel
    # 90% of 128 and of 64 weights, rounded to whole weights, held at zero through the fine-tuning
    assert "zeros per kernel after 1 fine-tuning epoch(s): hidden 89.8%, out 90.6%" in lines
    pruned = keras.models.load_model(pruned_path)
    kernels = [pruned.get_layer(name).get_weights()[0] for name in ("hidden", "out")]
    assert [np.count_nonzero(kernel) for kernel in kernels] == [13, 6]
    assert np.count_nonzero(original.get_layer("hidden").get_weights()[0] == 0) == 0  # copy, not in place


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--sparsity", "1.5", "--data", "sum"], "--sparsity: the fraction of weights set to zero"),
        (["--sparsity", "0.5"], "give it with --data"),
        (["--save-pruned", "x.keras"], "go with --sparsity"),
        (["--sparsity", "0.5", "--data", "sum", "--finetune-epochs", "-1"], "--finetune-epochs"),
    ],
)
def test_prunelab_bench_refuses_bad_connection_pruning_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    path = tmp_path / "model.keras"
    trained_like(sum_spec(4)).save(path)

    code = main(["bench", str(path), *extra])

    assert code == 2
    assert message in capsys.readouterr().err


def test_prunelab_bench_without_data_fails_int8_full_with_its_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "model.keras"
    trained_like(sum_spec(8)).save(path)

    code = main(["bench", str(path), "--formats", "float32", "int8_full", "--runs", "5"])

    out = capsys.readouterr().out
    assert code == 1
    assert "  int8_full: int8_full needs representative inputs from the training set" in out


def test_prunelab_crossover_prints_a_table_per_backend(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["crossover", "--rows", "16", "--cols", "8", "--densities", "1", "0.25", "--runs", "5"]

    code = main([*argv, "--warmup", "1", "--backends", "tensorflow"])

    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert lines[0].startswith("tensorflow: crossover ")
    assert [line.split()[:2] for line in lines[2:]] == [["25%", "32"], ["100%", "128"]]
