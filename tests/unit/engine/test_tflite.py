"""TFLite conversion, fidelity and LiteRT timing on the presets and tiny models.

Fidelity bounds, as the largest |TFLite − Keras| output over a batch, relative to the range of the
Keras outputs on that batch (measured worst case across the presets in brackets):

- float32: 1e-5 (1.2e-6): the same arithmetic, summed in a different order.
- float16: 5e-3 (4.5e-4): every weight rounded to 11 significant bits.
- int8_dynamic: 5e-2 (6.3e-3): weights in 256 levels per output channel, activations per batch.
- int8_full: 1e-1 (2.3e-2): weights and every activation in 256 levels.

A conversion that mixes up or drops weights misses these by orders of magnitude.
"""

from __future__ import annotations

import json
from typing import Any

import keras
import numpy as np
import pytest
from converted_presets import ConvertedPresets

from prunespec.presets import preset_names
from prunespec.spec import TrainingSpec
from worker.engine import latency
from worker.engine.latency import LatencyStats, benchmark_models, paired_speedup, time_interpreter
from worker.engine.tflite import (
    FORMATS,
    ConversionError,
    convert,
    evaluate_keras,
    evaluate_tflite,
    predict_tflite,
    score_outputs,
)
from worker.engine.training import objective

RELATIVE_BOUND = {"float32": 1e-5, "float16": 5e-3, "int8_dynamic": 5e-2, "int8_full": 1e-1}


def _tiny_classifier(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6,), name="input")
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, name="out")(hidden), name="tiny")


@pytest.fixture(scope="module")
def tiny_bytes() -> bytes:
    return convert(_tiny_classifier(), "float32")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", preset_names())
def test_every_preset_converts_and_matches_keras(
    converted_presets: ConvertedPresets, name: str, fmt: str
) -> None:
    model, x, _ = converted_presets.models[name]
    flatbuffer = converted_presets.flatbuffer(name, fmt)
    expected = model.predict(x, verbose=0)
    actual = predict_tflite(flatbuffer, x, batch_size=10)
    assert actual.shape == expected.shape
    assert actual.dtype == np.float32
    output_range = float(expected.max() - expected.min())
    assert output_range > 0
    error = float(np.abs(actual - expected).max())
    assert error <= RELATIVE_BOUND[fmt] * output_range, f"{name} {fmt}: {error / output_range:.2e} of range"


def test_lower_precision_formats_are_smaller(converted_presets: ConvertedPresets) -> None:
    sizes = {fmt: len(converted_presets.flatbuffer("lenet-300-100", fmt)) for fmt in FORMATS}
    assert sizes["float16"] < 0.55 * sizes["float32"]
    assert sizes["int8_dynamic"] < 0.3 * sizes["float32"]
    assert sizes["int8_full"] < 0.3 * sizes["float32"]


def test_an_operator_without_a_tflite_builtin_raises_conversion_error() -> None:
    inputs = keras.Input((4,), name="input")
    outputs = keras.layers.Lambda(keras.ops.erfinv, name="erfinv")(inputs)
    model = keras.Model(inputs, outputs, name="uses_erfinv")
    with pytest.raises(ConversionError) as caught:
        convert(model, "float32")
    error = caught.value
    assert error.fmt == "float32"
    assert "Erfinv" in error.reason
    assert "loc(" not in error.reason  # MLIR locations are dropped from the summary
    assert str(error).startswith("cannot convert model 'uses_erfinv' to float32 TFLite: ")
    assert "Erfinv" in error.details
    assert error.__cause__ is not None


def test_int8_full_needs_representative_data() -> None:
    with pytest.raises(ValueError, match="representative"):
        convert(_tiny_classifier(), "int8_full")


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="int8_dynamic"):
        convert(_tiny_classifier(), "int4")


def test_int8_full_calibration_uses_the_representative_data() -> None:
    model = _tiny_classifier()
    narrow = np.random.default_rng(0).random((64, 6), dtype=np.float32) * 0.01
    wide = np.random.default_rng(0).random((64, 6), dtype=np.float32) * 100.0
    assert convert(model, "int8_full", narrow, seed=1) != convert(model, "int8_full", wide, seed=1)


def test_predict_pads_the_last_batch_and_matches_keras(tiny_bytes: bytes) -> None:
    x = np.random.default_rng(1).random((10, 6), dtype=np.float32)
    expected = _tiny_classifier().predict(x, verbose=0)
    np.testing.assert_allclose(predict_tflite(tiny_bytes, x, batch_size=4), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(predict_tflite(tiny_bytes, x, batch_size=256), expected, rtol=1e-5, atol=1e-6)


def test_predict_refuses_examples_of_the_wrong_shape(tiny_bytes: bytes) -> None:
    with pytest.raises(ValueError, match=r"\(6,\)"):
        predict_tflite(tiny_bytes, np.zeros((2, 5), np.float32))


def test_score_outputs_computes_loss_and_accuracy_over_all_examples() -> None:
    goal = objective(TrainingSpec(loss="crossentropy"))
    logits = np.array([[5.0, 0.0], [0.0, 5.0], [5.0, 0.0], [5.0, 0.0]], dtype=np.float32)
    labels = np.array([0, 1, 1, 1])
    loss, metric = score_outputs(labels, logits, goal)
    assert metric == pytest.approx(0.5)
    right, wrong = np.log1p(np.exp(-5.0)), np.log1p(np.exp(5.0))
    assert loss == pytest.approx((2 * right + 2 * wrong) / 4, rel=1e-5)


@pytest.mark.parametrize("loss", ["crossentropy", "rmse"])
def test_tflite_and_keras_evaluations_agree(tiny_bytes: bytes, loss: str) -> None:
    rng = np.random.default_rng(2)
    x = rng.random((50, 6), dtype=np.float32)
    y: np.ndarray = rng.integers(0, 3, size=50) if loss == "crossentropy" else rng.random((50, 3))
    model = _tiny_classifier()
    goal = objective(TrainingSpec(loss=loss))
    keras_eval = evaluate_keras(model, x, y, goal)
    tflite_eval = evaluate_tflite(tiny_bytes, x, y, goal, batch_size=16)
    assert tflite_eval.loss == pytest.approx(keras_eval.loss, rel=1e-5)
    assert tflite_eval.metric == pytest.approx(keras_eval.metric, rel=1e-5)


def test_latency_stats_summarise_samples() -> None:
    stats = LatencyStats.from_samples("m", 123, 1, 1, 5, [4.0, 1.0, 3.0, 2.0, 100.0])
    assert stats.runs == 5
    assert stats.median_us == 3.0
    assert stats.min_us == 1.0
    assert stats.mean_us == pytest.approx(22.0)
    assert stats.p90_us == pytest.approx(float(np.percentile([1, 2, 3, 4, 100], 90)))
    assert stats.std_us == pytest.approx(float(np.std([1, 2, 3, 4, 100], ddof=1)))
    summary = stats.summary()
    assert "samples_us" not in summary
    json.dumps(summary)
    with pytest.raises(ValueError):
        LatencyStats.from_samples("m", 1, 1, 1, 0, [])


def test_benchmark_times_every_model_for_every_round(tiny_bytes: bytes) -> None:
    other = convert(_tiny_classifier(seed=1), "float16")
    x = np.random.default_rng(3).random((1, 6), dtype=np.float32)
    stats = benchmark_models({"float32": tiny_bytes, "float16": other}, x, runs=7, warmup=2, threads=1)
    assert list(stats) == ["float32", "float16"]
    for name, flatbuffer in (("float32", tiny_bytes), ("float16", other)):
        entry = stats[name]
        assert entry.runs == 7
        assert entry.warmup == 2
        assert entry.batch == 1
        assert entry.model_bytes == len(flatbuffer)
        assert all(sample > 0 for sample in entry.samples_us)
        assert 0 < entry.min_us <= entry.median_us <= entry.p90_us
    assert paired_speedup(stats["float32"], stats["float16"]) > 0


def test_benchmark_takes_a_larger_batch(tiny_bytes: bytes) -> None:
    x = np.random.default_rng(3).random((16, 6), dtype=np.float32)
    stats = time_interpreter(tiny_bytes, x, runs=3, warmup=0, threads=2, name="batch16")
    assert (stats.name, stats.batch, stats.threads, stats.runs) == ("batch16", 16, 2, 3)


class _Recorder:
    """Stands in for an interpreter and logs which model each invocation ran."""

    log: list[str] = []

    def __init__(self, name: str):
        self.name = name

    def invoke(self) -> None:
        self.log.append(self.name)


def test_benchmark_interleaves_models_and_rotates_which_runs_first(monkeypatch: pytest.MonkeyPatch) -> None:
    _Recorder.log = []

    def fake_prepared(model_bytes: bytes, x: Any, threads: int) -> _Recorder:
        return _Recorder(model_bytes.decode())

    monkeypatch.setattr(latency, "_prepared", fake_prepared)
    models = {"a": b"a", "b": b"b", "c": b"c"}
    stats = benchmark_models(models, np.zeros((1, 1), np.float32), runs=3, warmup=1)
    rounds = ["".join(_Recorder.log[i : i + 3]) for i in range(0, len(_Recorder.log), 3)]
    assert rounds == ["abc", "bca", "cab", "abc"]  # one warm-up round, then three timed
    assert all(entry.runs == 3 for entry in stats.values())


def test_paired_speedup_is_the_median_of_per_round_ratios() -> None:
    baseline = LatencyStats.from_samples("base", 1, 1, 1, 0, [10.0, 20.0, 40.0])
    candidate = LatencyStats.from_samples("cand", 1, 1, 1, 0, [5.0, 5.0, 40.0])
    assert paired_speedup(baseline, candidate) == pytest.approx(2.0)
    shorter = LatencyStats.from_samples("short", 1, 1, 1, 0, [1.0])
    with pytest.raises(ValueError, match="one benchmark_models call"):
        paired_speedup(baseline, shorter)


@pytest.mark.parametrize(("models", "runs", "warmup"), [({}, 1, 0), ({"m": b""}, 0, 0), ({"m": b""}, 1, -1)])
def test_benchmark_refuses_bad_arguments(models: dict[str, bytes], runs: int, warmup: int) -> None:
    with pytest.raises(ValueError):
        benchmark_models(models, np.zeros((1, 6), np.float32), runs=runs, warmup=warmup)


def test_zero_threads_are_refused(tiny_bytes: bytes) -> None:
    with pytest.raises(ValueError, match="threads"):
        time_interpreter(tiny_bytes, np.zeros((1, 6), np.float32), runs=1, threads=0)
