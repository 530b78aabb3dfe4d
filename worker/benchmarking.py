"""Benchmark trained models as TFLite: convert to each format, check fidelity, count bits, and time them all.

For every model and format: convert (``engine.tflite.convert``; ``int8_full`` calibrates on training
inputs), run the converted model on the test examples next to the Keras model (loss and metric of
both: the conversion's fidelity), and count its representation bits (``engine.bits``). Then every model
that converted and ran is timed in ONE interleaved LiteRT loop (``engine.latency.benchmark_models``),
baseline and pruned together, so their ratios hold on a noisy machine. A model the converter refuses,
or that cannot run, becomes a ``failed`` result with the reason; the others go on.

No database here: ``worker.experiment_benchmarks`` feeds recorded cycles in and stores the results,
``worker.bench_cli`` benchmarks a saved model. Imports TensorFlow: import it inside a task or command.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from backend.service.benchmarks import FAILED, OK, BenchmarkRecord
from prunespec.layers import ModelSpec
from prunespec.spec import BenchmarkSpec, ExperimentSpec
from worker.engine.bits import nominal_bits, stored_bits
from worker.engine.data import Dataset, fit_to_model, load_dataset
from worker.engine.latency import LatencyStats, benchmark_models, paired_speedup
from worker.engine.tflite import (
    ConversionError,
    Evaluation,
    convert,
    evaluate_keras,
    evaluate_tflite,
    predict_tflite,
)
from worker.engine.training import Objective, objective, targets

#: Failures a model or a data set can cause; each becomes a failed result. Anything else (a time limit,
#: a lost lease, Ctrl-C, running out of memory) propagates.
RECOVERABLE: tuple[type[Exception], ...] = (
    ValueError,
    RuntimeError,
    TypeError,
    KeyError,
    OSError,
    tf.errors.OpError,
)
#: The format whose latency gives an experiment's ``latency_speedup``.
SPEEDUP_FORMAT = "float32"


class BenchmarkCancelled(Exception):
    """The benchmark was asked to stop (the experiment was cancelled or its lease lost)."""


@dataclass(frozen=True)
class BenchmarkModel:
    """One model to benchmark.

    Attributes:
        cycle_index: the cycle it comes from (for a saved model: 0).
        model: the trained Keras model; None when it could not be loaded (``error`` says why).
        spec: its architecture, for representation bits; None when unknown.
        error: why the model is missing.
        sparse_weights: store kernels with many zeros in TFLite's sparse format (a connection-pruned
            model), so the stored bits count only what the sparse encoding keeps.
    """

    cycle_index: int
    model: keras.Model | None
    spec: ModelSpec | None = None
    error: str | None = None
    sparse_weights: bool = False


@dataclass(frozen=True)
class BenchmarkInputs:
    """The data a benchmark runs on.

    Attributes:
        x_sample: the input of every timed invocation (batch 1).
        representative: training inputs that calibrate ``int8_full``; None when unavailable.
        x_test, y_test, goal: the examples fidelity is measured on, and the run's loss and metric; None
            when unavailable (no fidelity is measured).
        data_error: why the data set could not be loaded, when it could not.
    """

    x_sample: np.ndarray
    representative: np.ndarray | None = None
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    goal: Objective | None = None
    data_error: str | None = None

    @property
    def fidelity(self) -> tuple[np.ndarray, np.ndarray, Objective] | None:
        """``(x_test, y_test, goal)`` when fidelity can be measured, else None."""
        if self.x_test is None or self.y_test is None or self.goal is None:
            return None
        return self.x_test, self.y_test, self.goal


@dataclass(frozen=True)
class FormatResult:
    """One model in one format.

    Attributes:
        cycle_index, format: which.
        status: ``ok`` or ``failed``.
        error: why it failed.
        flatbuffer: the ``.tflite`` file (kept when it converted, even if it could not run).
        latency: from the interleaved timing; None unless ``ok``.
        keras, tflite: loss and metric of the Keras and the converted model on the same examples.
        nominal_bits, stored_bits: representation bits by convention, and what the file holds.
        threads: interpreter threads.
    """

    cycle_index: int
    format: str
    status: str
    error: str | None = None
    flatbuffer: bytes | None = None
    latency: LatencyStats | None = None
    keras: Evaluation | None = None
    tflite: Evaluation | None = None
    nominal_bits: int | None = None
    stored_bits: int | None = None
    threads: int = 1

    def record(self) -> BenchmarkRecord:
        """The result as the row ``backend.service.benchmarks`` stores."""
        latency = self.latency
        return BenchmarkRecord(
            cycle_index=self.cycle_index,
            format=self.format,
            status=self.status,
            error=self.error,
            tflite=self.flatbuffer,
            threads=self.threads,
            runs=0 if latency is None else latency.runs,
            latency_median_us=None if latency is None else latency.median_us,
            latency_p90_us=None if latency is None else latency.p90_us,
            latency_mean_us=None if latency is None else latency.mean_us,
            latency_min_us=None if latency is None else latency.min_us,
            latency_std_us=None if latency is None else latency.std_us,
            keras_loss=_finite(None if self.keras is None else self.keras.loss),
            keras_metric=_finite(None if self.keras is None else self.keras.metric),
            tflite_loss=_finite(None if self.tflite is None else self.tflite.loss),
            tflite_metric=_finite(None if self.tflite is None else self.tflite.metric),
            total_bits=self.nominal_bits,
        )


@dataclass(frozen=True)
class BenchmarkRun:
    """Every model in every format, timed together.

    Attributes:
        results: by model, then format, in the order asked for.
        latency_speedup: the final cycle's float32 model against the baseline's (median of per-round
            ratios); None unless both were timed.
    """

    results: tuple[FormatResult, ...]
    latency_speedup: float | None

    def records(self) -> list[BenchmarkRecord]:
        """Every result as a stored row."""
        return [result.record() for result in self.results]


def _finite(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def _reason(error: BaseException) -> str:
    return str(error) if isinstance(error, ConversionError) else f"{type(error).__name__}: {error}"


# --------------------------------------------------------------------------------------------- inputs


def experiment_inputs(
    spec: ExperimentSpec, data: Dataset | None = None, *, data_dirs: Sequence[Path] | None = None
) -> BenchmarkInputs:
    """The data an experiment's benchmark runs on: its test set (at most ``benchmark.fidelity_samples``
    examples) and its training inputs, shaped for the model.

    Args:
        spec: the experiment.
        data: its loaded data set. Default None: load it (``data_dirs`` as for ``load_dataset``).
        data_dirs: where data set files are looked for. Default None: the engine's defaults.

    Returns:
        The inputs; when the data cannot be loaded, only a seeded random timing input and the reason.
    """
    try:
        if data is None:
            data = load_dataset(spec.dataset, seed=spec.seed, data_dirs=data_dirs)
        fitted = fit_to_model(data, spec.model, spec.training.loss)
        goal = objective(spec.training)
        samples = spec.benchmark.fidelity_samples or len(fitted.x_test)
        x_test = np.asarray(fitted.x_test[:samples], dtype=np.float32)
        y_test = targets(fitted.y_test[:samples], goal, fitted.num_classes)
    except RECOVERABLE as error:
        return BenchmarkInputs(x_sample=random_sample(spec.model.input_shape), data_error=_reason(error))
    sample = x_test[:1] if len(x_test) else random_sample(spec.model.input_shape)
    representative = np.asarray(fitted.x_train, dtype=np.float32) if len(fitted.x_train) else None
    return BenchmarkInputs(sample, representative, x_test, y_test, goal)


def random_sample(input_shape: Sequence[int], seed: int = 0) -> np.ndarray:
    """A seeded standard-normal batch-1 input of the given example shape (when no data is at hand)."""
    return np.random.default_rng(seed).standard_normal((1, *input_shape)).astype(np.float32)


# --------------------------------------------------------------------------------------------- one model


def _convert_and_check(
    entry: BenchmarkModel, fmt: str, inputs: BenchmarkInputs, keras_eval: Evaluation | None, threads: int
) -> FormatResult:
    """Convert one model to one format, run it on the test examples (or the timing input), count bits."""
    assert entry.model is not None
    failed = FormatResult(entry.cycle_index, fmt, FAILED, threads=threads, keras=keras_eval)
    if fmt == "int8_full" and inputs.representative is None:
        detail = f": {inputs.data_error}" if inputs.data_error else ""
        return replace(failed, error=f"int8_full needs representative inputs from the training set{detail}")
    try:
        flatbuffer = convert(entry.model, fmt, inputs.representative, sparse_weights=entry.sparse_weights)
    except RECOVERABLE as error:
        return replace(failed, error=_reason(error))
    try:
        stored: int | None = stored_bits(flatbuffer, fmt).total_bits
    except RECOVERABLE:
        stored = None
    converted = replace(
        failed,
        flatbuffer=flatbuffer,
        nominal_bits=None if entry.spec is None else nominal_bits(entry.spec, fmt).total_bits,
        stored_bits=stored,
    )
    try:
        tflite_eval = None
        if inputs.fidelity is not None:
            tflite_eval = evaluate_tflite(flatbuffer, *inputs.fidelity, threads=threads)
        else:
            predict_tflite(flatbuffer, inputs.x_sample, threads=threads)
    except RECOVERABLE as error:
        return replace(converted, error=f"the converted model does not run: {_reason(error)}")
    return replace(converted, status=OK, tflite=tflite_eval)


def _model_results(
    entry: BenchmarkModel,
    settings: BenchmarkSpec,
    inputs: BenchmarkInputs,
    cancelled: Callable[[], bool],
) -> list[FormatResult]:
    """Every format of one model (failed results for all when the model is missing)."""
    if entry.model is None:
        error = entry.error or "the trained model is missing"
        return [
            FormatResult(entry.cycle_index, fmt, FAILED, error, threads=settings.threads)
            for fmt in settings.formats
        ]
    keras_eval = None
    if inputs.fidelity is not None:
        try:
            keras_eval = evaluate_keras(entry.model, *inputs.fidelity)
        except RECOVERABLE:
            keras_eval = None
    results = []
    for fmt in settings.formats:
        if cancelled():
            raise BenchmarkCancelled(f"cancelled while converting cycle {entry.cycle_index} to {fmt}")
        results.append(_convert_and_check(entry, fmt, inputs, keras_eval, settings.threads))
    return results


# --------------------------------------------------------------------------------------------- all models


def benchmark_cycles(
    models: Sequence[BenchmarkModel],
    settings: BenchmarkSpec,
    inputs: BenchmarkInputs,
    *,
    baseline_cycle: int | None = None,
    final_cycle: int | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> BenchmarkRun:
    """Convert, check and count every model in every format, then time all that run in one loop.

    Args:
        models: the models, e.g. one per benchmarked cycle.
        settings: formats, timed ``runs``, ``warmup`` rounds and interpreter ``threads``.
        inputs: the timing input, calibration data and fidelity examples.
        baseline_cycle: the cycle speed-ups are relative to. Default: the first model's.
        final_cycle: the cycle whose speed-up is ``latency_speedup``. Default: the last model's.
        cancelled: polled before each conversion and before the timing; True raises. Default never.

    Returns:
        One result per model and format (``ok`` ones with latencies), and the float32 speed-up.

    Raises:
        BenchmarkCancelled: ``cancelled`` said True.
    """
    stop = cancelled or (lambda: False)
    results: list[FormatResult] = []
    for entry in models:
        results.extend(_model_results(entry, settings, inputs, stop))
    if stop():
        raise BenchmarkCancelled("cancelled before timing")
    runnable = {
        f"cycle{r.cycle_index}/{r.format}": r for r in results if r.status == OK and r.flatbuffer is not None
    }
    latencies: dict[str, LatencyStats] = {}
    timing_error: str | None = None
    if runnable:
        flatbuffers = {key: result.flatbuffer for key, result in runnable.items() if result.flatbuffer}
        try:
            latencies = benchmark_models(
                flatbuffers, inputs.x_sample, settings.runs, settings.warmup, settings.threads
            )
        except RECOVERABLE as error:
            timing_error = f"timing failed: {_reason(error)}"
    timed: list[FormatResult] = []
    for result in results:
        key = f"cycle{result.cycle_index}/{result.format}"
        if key in latencies:
            result = replace(result, latency=latencies[key])
        elif key in runnable and timing_error is not None:
            result = replace(result, status=FAILED, error=timing_error)
        timed.append(result)
    return BenchmarkRun(tuple(timed), _speedup(models, latencies, baseline_cycle, final_cycle))


def _speedup(
    models: Sequence[BenchmarkModel],
    latencies: dict[str, LatencyStats],
    baseline_cycle: int | None,
    final_cycle: int | None,
) -> float | None:
    """The final cycle's float32 speed-up over the baseline's, when both were timed."""
    if not models:
        return None
    baseline = models[0].cycle_index if baseline_cycle is None else baseline_cycle
    final = models[-1].cycle_index if final_cycle is None else final_cycle
    first = latencies.get(f"cycle{baseline}/{SPEEDUP_FORMAT}")
    last = latencies.get(f"cycle{final}/{SPEEDUP_FORMAT}")
    return None if first is None or last is None else paired_speedup(first, last)
