"""Latency of TFLite models under the LiteRT interpreter, timed in interleaved loops.

Latency is measured with ``ai_edge_litert.interpreter.Interpreter`` (the successor of the deprecated
``tf.lite.Interpreter``) with its default op resolver, i.e. the XNNPACK delegate as shipped. Models
compared with each other are timed in one interleaved loop, so drift on a shared machine hits them
alike and their ratio holds.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from worker.engine.tflite import _check_example_shape, _float_io, _interpreter


def _prepared(model_bytes: bytes, x: np.ndarray, threads: int) -> Interpreter:
    """An interpreter whose input holds ``x`` (its batch resized to ``len(x)``), ready to invoke."""
    interpreter = _interpreter(model_bytes, threads)
    detail, _ = _float_io(interpreter)
    _check_example_shape(detail, x)
    interpreter.resize_tensor_input(detail["index"], [len(x), *x.shape[1:]])
    interpreter.allocate_tensors()
    interpreter.set_tensor(detail["index"], np.ascontiguousarray(x, dtype=np.float32))
    return interpreter


@dataclass(frozen=True)
class LatencyStats:
    """Wall time of single interpreter invocations of one model, in microseconds.

    Only ``invoke()`` is timed (the input is set once, before warm-up), so the numbers include the
    Python binding's call overhead (~1 µs) but no copying.

    Attributes:
        name: the model's key in the benchmark.
        model_bytes: size of the flatbuffer.
        batch: examples per invocation.
        threads: interpreter threads.
        warmup: untimed invocations before the timed ones.
        samples_us: every timed invocation in the order run (round r of an interleaved benchmark is
            ``samples_us[r]`` for every model).
        median_us, p90_us, mean_us, min_us: of ``samples_us``.
        std_us: sample standard deviation (ddof 1; 0 for a single run).
    """

    name: str
    model_bytes: int
    batch: int
    threads: int
    warmup: int
    samples_us: tuple[float, ...]
    median_us: float
    p90_us: float
    mean_us: float
    min_us: float
    std_us: float

    @property
    def runs(self) -> int:
        return len(self.samples_us)

    @classmethod
    def from_samples(
        cls, name: str, model_bytes: int, batch: int, threads: int, warmup: int, samples_us: Sequence[float]
    ) -> LatencyStats:
        """Summarise timed invocations.

        Raises:
            ValueError: no samples.
        """
        if not samples_us:
            raise ValueError("no timed runs")
        values = np.asarray(samples_us, dtype=np.float64)
        return cls(
            name=name,
            model_bytes=model_bytes,
            batch=batch,
            threads=threads,
            warmup=warmup,
            samples_us=tuple(float(v) for v in values),
            median_us=float(np.median(values)),
            p90_us=float(np.percentile(values, 90)),
            mean_us=float(values.mean()),
            min_us=float(values.min()),
            std_us=float(values.std(ddof=1)) if len(values) > 1 else 0.0,
        )

    def summary(self) -> dict[str, float | int | str]:
        """The statistics as JSON-ready values, without the samples."""
        return {
            "name": self.name,
            "model_bytes": self.model_bytes,
            "batch": self.batch,
            "threads": self.threads,
            "warmup": self.warmup,
            "runs": self.runs,
            "median_us": self.median_us,
            "p90_us": self.p90_us,
            "mean_us": self.mean_us,
            "min_us": self.min_us,
            "std_us": self.std_us,
        }


def benchmark_models(
    models: Mapping[str, bytes],
    x_sample: np.ndarray,
    runs: int = 200,
    warmup: int = 20,
    threads: int = 1,
) -> dict[str, LatencyStats]:
    """Time several TFLite models in one interleaved loop.

    Every model gets its own interpreter holding ``x_sample``. Round r invokes every model once,
    starting with model ``r mod n`` so that no model always runs first (or right after the same
    neighbour); warm-up rounds are interleaved the same way. Ratios of the results therefore hold on a
    noisy machine even when absolute times drift.

    Args:
        models: flatbuffers by name (each with one float32 input and output fitting ``x_sample``).
        x_sample: the input of every invocation; its first axis is the batch (e.g. shape (1, 784) for
            batch 1).
        runs: timed rounds. Default 200.
        warmup: untimed rounds first. Default 20.
        threads: interpreter threads. Default 1.

    Returns:
        Latency statistics by name, in the order of ``models``.

    Raises:
        ValueError: no models, ``runs`` < 1, ``warmup`` < 0, ``threads`` < 1, or a model that does not
            take ``x_sample``.
    """
    if not models:
        raise ValueError("no models to time")
    if runs < 1 or warmup < 0:
        raise ValueError(f"runs must be at least 1 and warmup at least 0, got {runs} and {warmup}")
    names = list(models)
    invokers = [_prepared(models[name], x_sample, threads).invoke for name in names]
    samples: list[list[float]] = [[] for _ in names]
    clock = time.perf_counter_ns
    for round_index in range(warmup + runs):
        first = round_index % len(names)
        for position in [*range(first, len(names)), *range(first)]:
            invoke = invokers[position]
            started = clock()
            invoke()
            elapsed = clock() - started
            if round_index >= warmup:
                samples[position].append(elapsed / 1000.0)
    return {
        name: LatencyStats.from_samples(
            name, len(models[name]), int(x_sample.shape[0]), threads, warmup, samples[index]
        )
        for index, name in enumerate(names)
    }


def time_interpreter(
    model_bytes: bytes,
    x_sample: np.ndarray,
    runs: int = 200,
    warmup: int = 20,
    threads: int = 1,
    name: str = "model",
) -> LatencyStats:
    """Time one TFLite model (see :func:`benchmark_models`, of which this is the one-model case).

    Args:
        model_bytes: the flatbuffer.
        x_sample: the input of every invocation, batch first.
        runs: timed invocations. Default 200.
        warmup: untimed invocations first. Default 20.
        threads: interpreter threads. Default 1.
        name: the name the statistics carry. Default "model".

    Returns:
        The model's latency statistics.

    Raises:
        ValueError: as :func:`benchmark_models`.
    """
    return benchmark_models({name: model_bytes}, x_sample, runs, warmup, threads)[name]


def paired_speedup(baseline: LatencyStats, candidate: LatencyStats) -> float:
    """How many times faster ``candidate`` runs than ``baseline``, from one interleaved benchmark.

    The median over rounds of baseline / candidate time: each round's two invocations ran back to back,
    so a slow phase of the machine cancels out of that round's ratio.

    Args:
        baseline: e.g. cycle 0's model.
        candidate: a model timed in the same :func:`benchmark_models` call.

    Returns:
        The speed-up (> 1 means the candidate is faster).

    Raises:
        ValueError: the two were timed with different numbers of rounds.
    """
    if baseline.runs != candidate.runs:
        raise ValueError(
            f"'{baseline.name}' and '{candidate.name}' were timed with {baseline.runs} and "
            f"{candidate.runs} runs; time them in one benchmark_models call"
        )
    return float(
        statistics.median(b / c for b, c in zip(baseline.samples_us, candidate.samples_us, strict=True))
    )
