"""LeNet-5 trimmed by APoZ: per cycle, FLOPs reduction against measured TFLite speed-up, TFLite fidelity
and representation bits.

Usage:
    python benchmarks/tflite_latency.py [--spec examples/lenet5-apoz.yaml] [--runs 500] [--warmup 50]
        [--threads 1] [--formats float32,float16,int8_dynamic,int8_full] [--time-formats float32]
        [--out FILE]

Reads the shared MNIST t10k files (``../shared/datasets/mnist-t10k`` beside the project root; split
8,000/2,000), runs the trimming cycles of the spec, and keeps a copy of every cycle's trained model.
Every cycle's model is converted to float32 TFLite, and all of them are timed in one interleaved LiteRT
benchmark (batch 1), so each cycle's speed-up over cycle 0 is the median of per-round ratios. Every
cycle is also converted to each of ``--formats`` to set its test accuracy beside its representation
bits (Liang et al.). Prints two tables and writes everything as JSON (default
``runs/benchmarks/tflite_latency.json``).

:func:`trim_and_benchmark` does all of it for any spec and returns the report; :class:`KeepTrainedModels`
and :func:`evaluate_cycles` are its parts (the reproduction scripts import them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from prunespec.spec import ExperimentSpec, load_spec
from worker.engine.bits import FORMATS, nominal_bits, stored_bits  # noqa: E402
from worker.engine.cycle import run_cycles  # noqa: E402
from worker.engine.data import fit_to_model, load_dataset  # noqa: E402
from worker.engine.latency import benchmark_models, paired_speedup  # noqa: E402
from worker.engine.results import CycleResult, EpochRecord  # noqa: E402
from worker.engine.tflite import convert, evaluate_keras, evaluate_tflite  # noqa: E402
from worker.engine.training import Objective, objective, targets  # noqa: E402

tf.get_logger().setLevel("ERROR")  # a new model per cycle retraces predict/measure; that is expected here
REPO_ROOT = Path(__file__).resolve().parents[1]
T10K_DIR = REPO_ROOT.parent / "shared" / "datasets" / "mnist-t10k"


class KeepTrainedModels:
    """A reporter that keeps a copy of every cycle's trained model (the engine goes on training it)."""

    def __init__(self) -> None:
        self.cycles: list[tuple[CycleResult, keras.Model]] = []

    def on_epoch(self, record: EpochRecord) -> None:
        return None

    def on_cycle(self, result: CycleResult, trained: keras.Model, pruned: keras.Model | None) -> None:
        copy = keras.models.clone_model(trained)
        copy.set_weights(trained.get_weights())
        self.cycles.append((result, copy))
        print(
            f"cycle {result.index}: widths {result.widths} val {result.metric_name} {result.val_metric:.4f}",
            file=sys.stderr,
        )

    def cancelled(self) -> bool:
        return False


def evaluate_cycles(
    cycles: list[tuple[CycleResult, keras.Model]],
    formats: list[str],
    x_test: np.ndarray,
    y_test: np.ndarray,
    representative: np.ndarray,
    goal: Objective,
    keep: dict[str, bytes] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, bytes]]:
    """Per cycle: Keras loss/metric, and per format its flatbuffer's size, loss/metric and bits.

    Args:
        cycles: every cycle's result and trained model (as :class:`KeepTrainedModels` keeps them).
        formats: TFLite formats to convert each model to.
        x_test: held-out inputs.
        y_test: their targets, in the form the loss expects.
        representative: training inputs calibrating ``int8_full``.
        goal: the run's loss and metric.
        keep: when given, receives the other formats' flatbuffers too, keyed ``cycle<index>-<format>``.
            Default None.

    Returns:
        One row per cycle, and every cycle's float32 flatbuffer keyed ``cycle<index>``.
    """
    rows: list[dict[str, Any]] = []
    float32_models: dict[str, bytes] = {}
    for result, model in cycles:
        keras_eval = evaluate_keras(model, x_test, y_test, goal)
        per_format: dict[str, Any] = {}
        for fmt in formats:
            flatbuffer = convert(model, fmt, representative)
            if fmt == "float32":
                float32_models[f"cycle{result.index}"] = flatbuffer
            elif keep is not None:
                keep[f"cycle{result.index}-{fmt}"] = flatbuffer
            tflite_eval = evaluate_tflite(flatbuffer, x_test, y_test, goal)
            nominal = nominal_bits(result.spec, fmt)
            per_format[fmt] = {
                "bytes": len(flatbuffer),
                "loss": tflite_eval.loss,
                "metric": tflite_eval.metric,
                "nominal_bits": nominal.total_bits,
                "stored_bits": stored_bits(flatbuffer, fmt).total_bits,
                "nominal_bits_per_param": nominal.bits_per_param,
            }
        if "float32" not in formats:
            float32_models[f"cycle{result.index}"] = convert(model, "float32")
        rows.append(
            {
                "cycle": result.index,
                "accepted": result.accepted,
                "widths": result.widths,
                "params": result.params,
                "flops": result.flops,
                "keras_loss": keras_eval.loss,
                "keras_metric": keras_eval.metric,
                "formats": per_format,
            }
        )
    return rows, float32_models


def _print_tables(rows: list[dict[str, Any]], metric_name: str, threads: int, runs: int) -> None:
    print(f"\nLiteRT float32, batch 1, {threads} thread(s), {runs} interleaved rounds:")
    print(
        f"{'cycle':>5} {'widths':<14} {'params':>9} {'FLOPs':>10} {'FLOPs÷':>7} {'median µs':>9} "
        f"{'p90 µs':>8} {'speed-up':>8} {'keras ' + metric_name:>15} {'tflite ' + metric_name:>16}"
    )
    for row in rows:
        widths = " ".join(str(w) for w in row["widths"].values())
        mark = "" if row["accepted"] else " (rejected)"
        tflite_metric = row["formats"].get("float32", {}).get("metric", float("nan"))
        timing = row["latency"]
        print(
            f"{row['cycle']:>5} {widths:<14} {row['params']:>9,} {row['flops']:>10,} "
            f"{row['flops_reduction']:>6.2f}x {timing['median_us']:>9.1f} {timing['p90_us']:>8.1f} "
            f"{row['speedup']:>7.2f}x {row['keras_metric']:>15.4f} {tflite_metric:>16.4f}{mark}"
        )
    print(f"\n{metric_name} against representation bits (nominal convention; stored = what the file holds):")
    print(
        f"{'cycle':>5} {'format':<13} {'kbit nominal':>12} {'kbit stored':>11} {'bits/param':>10} "
        f"{metric_name:>9}"
    )
    for row in rows:
        for fmt, entry in row["formats"].items():
            print(
                f"{row['cycle']:>5} {fmt:<13} {entry['nominal_bits'] / 1000:>12,.1f} "
                f"{entry['stored_bits'] / 1000:>11,.1f} {entry['nominal_bits_per_param']:>10.2f} "
                f"{entry['metric']:>9.4f}"
            )


def time_cycles(
    rows: list[dict[str, Any]],
    float32_models: dict[str, bytes],
    x_sample: np.ndarray,
    runs: int,
    warmup: int,
    threads: int,
    others: dict[str, bytes] | None = None,
) -> None:
    """Time every cycle's float32 model in one interleaved LiteRT benchmark; add to each row its
    ``flops_reduction`` and ``speedup`` over cycle 0 (median of per-round ratios) and its ``latency``.

    ``others`` (flatbuffers keyed ``cycle<index>-<format>``, see :func:`evaluate_cycles`) are timed in the
    same interleaved loop; each row then gets ``format_latency[<format>]``: the statistics and the
    speed-up over cycle 0's float32 model."""
    extra = others or {}
    latency = benchmark_models({**float32_models, **extra}, x_sample, runs, warmup, threads)
    baseline = latency[f"cycle{rows[0]['cycle']}"]
    for row in rows:
        stats = latency[f"cycle{row['cycle']}"]
        row["flops_reduction"] = rows[0]["flops"] / row["flops"]
        row["latency"] = stats.summary()
        row["speedup"] = paired_speedup(baseline, stats)
        for name in extra:
            cycle, fmt = name.split("-", 1)
            if cycle == f"cycle{row['cycle']}":
                timed = latency[name]
                row.setdefault("format_latency", {})[fmt] = {
                    **timed.summary(),
                    "speedup": paired_speedup(baseline, timed),
                }


def trim_and_benchmark(
    spec: ExperimentSpec,
    data_dirs: Sequence[Path],
    formats: Sequence[str],
    runs: int,
    warmup: int,
    threads: int,
    time_formats: Sequence[str] = ("float32",),
) -> dict[str, Any]:
    """Run a spec's trimming cycles, then convert, score and time every cycle's model.

    Args:
        spec: the experiment.
        data_dirs: where its dataset files are looked for.
        formats: TFLite formats each cycle is converted to and scored in (float32 is always timed).
        runs: timed interleaved rounds (batch 1).
        warmup: untimed rounds first.
        threads: LiteRT interpreter threads.
        time_formats: formats timed (float32 always is; the others must be in ``formats``).
            Default float32 only.

    Returns:
        The report :func:`main` writes: spec, data, stop reason, training seconds, benchmark settings and
        one row per cycle (see :func:`evaluate_cycles` and :func:`time_cycles`).
    """
    data = load_dataset(spec.dataset, seed=spec.seed, data_dirs=list(data_dirs), local_paths=True)
    reporter = KeepTrainedModels()
    started = time.perf_counter()
    outcome = run_cycles(spec, data, reporter)
    train_seconds = time.perf_counter() - started

    goal = objective(spec.training)
    fitted = fit_to_model(data, spec.model, spec.training.loss)
    y_test = targets(fitted.y_test, goal, fitted.num_classes)
    converted: dict[str, bytes] = {}
    rows, float32_models = evaluate_cycles(
        reporter.cycles, list(formats), fitted.x_test, y_test, fitted.x_train, goal, converted
    )
    others = {name: fb for name, fb in converted.items() if name.split("-", 1)[1] in time_formats}
    time_cycles(rows, float32_models, fitted.x_test[:1], runs, warmup, threads, others)
    return {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__},
        "spec": spec.model_dump(mode="json"),
        "data": data.description,
        "metric_name": goal.metric_name,
        "stop_reason": outcome.stop_reason,
        "final_cycle": outcome.final.index,
        "train_seconds": train_seconds,
        "benchmark": {
            "runs": runs,
            "warmup": warmup,
            "threads": threads,
            "batch": 1,
            "formats": ["float32", *sorted({name.split("-", 1)[1] for name in others})],
        },
        "cycles": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--spec", type=Path, default=REPO_ROOT / "examples" / "lenet5-apoz.yaml")
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument(
        "--time-formats", default="float32", help="formats timed besides float32 (e.g. float32,int8_dynamic)"
    )
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "runs" / "benchmarks" / "tflite_latency.json")
    args = parser.parse_args()
    formats = [f for f in args.formats.split(",") if f]

    time_formats = [f for f in args.time_formats.split(",") if f]
    report = trim_and_benchmark(
        load_spec(args.spec), [T10K_DIR], formats, args.runs, args.warmup, args.threads, time_formats
    )
    _print_tables(report["cycles"], report["metric_name"], args.threads, args.runs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
