"""Engine overheads as ratios measured in one run: a cycle's training vs plain ``model.fit``, and the
statistics pass vs plain ``model.predict``.

Usage:
    python benchmarks/engine_throughput.py [--samples 1000000] [--epochs 3] [--repeats 3]

The summation net (2 → 1000 ReLU → 1) on generated data, batch 1000, momentum SGD. Each repeat times
the baseline and the engine path back to back (alternating which goes first), and the reported ratio
is the median of the per-repeat ratios, so drift on a shared machine cancels out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from backend.spec import ExperimentSpec  # noqa: E402
from worker.engine.build import build_model  # noqa: E402
from worker.engine.cycle import _Run  # noqa: E402
from worker.engine.data import load_dataset  # noqa: E402
from worker.engine.results import NullReporter  # noqa: E402
from worker.engine.stats import measure  # noqa: E402
from worker.engine.training import compile_model, objective  # noqa: E402


def _spec(samples: int, epochs: int) -> ExperimentSpec:
    return ExperimentSpec.model_validate(
        {
            "name": "throughput",
            "model": "sum-mlp",
            "dataset": {"name": "sum", "train_samples": samples, "test_samples": 10_000},
            "training": {
                "optimizer": "momentum",
                "learning_rate": 0.01,
                "batch_size": 1000,
                "epochs": epochs,
                "loss": "mse",
            },
            "pruning": {"criterion": "activation_count", "stats_samples": None},
        }
    )


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _paired(
    baseline: Callable[[], object], candidate: Callable[[], object], repeats: int
) -> dict[str, float]:
    """Median times and the median of per-repeat ratios candidate / baseline."""
    base_times, cand_times = [], []
    for repeat in range(repeats):
        if repeat % 2 == 0:
            base_times.append(_timed(baseline))
            cand_times.append(_timed(candidate))
        else:
            cand_times.append(_timed(candidate))
            base_times.append(_timed(baseline))
    ratios = [c / b for b, c in zip(base_times, cand_times, strict=True)]
    return {
        "baseline_s": statistics.median(base_times),
        "engine_s": statistics.median(cand_times),
        "ratio": statistics.median(ratios),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    spec = _spec(args.samples, args.epochs)
    data = load_dataset(spec.dataset, seed=0)
    run = _Run(spec, data, NullReporter())
    goal = objective(spec.training)

    def plain_fit() -> None:
        model = build_model(spec.model)
        compile_model(model, spec.training, goal)
        model.fit(data.x_train, data.y_train, batch_size=1000, epochs=args.epochs, shuffle=True, verbose=0)

    def plain_fit_validated() -> None:
        model = build_model(spec.model)
        compile_model(model, spec.training, goal)
        model.fit(
            data.x_train,
            data.y_train,
            batch_size=1000,
            epochs=args.epochs,
            validation_data=(data.x_test, data.y_test),
            shuffle=True,
            verbose=0,
        )

    def cycle_training() -> None:
        run.train(build_model(spec.model, spec.training), 0)

    model = build_model(spec.model)
    layers = spec.model.prunable_names()

    def plain_predict() -> None:
        model.predict(data.x_train, batch_size=1000, verbose=0)

    def statistics_pass() -> None:
        measure(model, spec.model, layers, data.x_train, batch_size=1000)

    keras.utils.set_random_seed(0)
    plain_predict()  # warm both paths once
    statistics_pass()
    results = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__},
        "samples": args.samples,
        "epochs": args.epochs,
        "training_vs_fit": _paired(plain_fit, cycle_training, args.repeats),
        "training_vs_fit_with_validation": _paired(plain_fit_validated, cycle_training, args.repeats),
        "stats_vs_predict": _paired(plain_predict, statistics_pass, args.repeats),
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
