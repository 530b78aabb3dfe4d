"""Engine overheads as ratios measured in one run: a cycle's training vs plain ``model.fit``, and the
statistics pass vs plain ``model.predict``.

Usage:
    python benchmarks/engine_throughput.py [--samples 1000000] [--epochs 3] [--repeats 3]

The summation net (2 → 1000 ReLU → 1) on generated data, batch 1000, momentum SGD. Each repeat times
the baseline and the engine path back to back (alternating which goes first), and the reported ratio
is the median of the per-repeat ratios, so drift on a shared machine cancels out.

:func:`measure_overheads` runs the same comparisons for any experiment spec and its dataset (the
reproduction scripts import it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from prunespec.spec import ExperimentSpec
from worker.engine import fold_kernel  # noqa: E402
from worker.engine.build import build_model  # noqa: E402
from worker.engine.cycle import _Run  # noqa: E402
from worker.engine.data import Dataset, load_dataset  # noqa: E402
from worker.engine.results import NullReporter  # noqa: E402
from worker.engine.stats import measure  # noqa: E402
from worker.engine.training import compile_model, objective  # noqa: E402


def throughput_spec(samples: int, epochs: int) -> ExperimentSpec:
    """The summation net's spec this benchmark times by default."""
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


def paired(baseline: Callable[[], object], candidate: Callable[[], object], repeats: int) -> dict[str, Any]:
    """Median times and the median of per-repeat ratios candidate / baseline.

    Repeat r runs both back to back, the baseline first when r is even, so a slow phase of the machine
    hits both alike.

    Returns:
        ``baseline_s`` and ``engine_s`` (median seconds), ``ratio`` (median of candidate / baseline) and
        ``ratios`` (every repeat's).
    """
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
        "ratios": ratios,
    }


def measure_overheads(
    spec: ExperimentSpec, data: Dataset, repeats: int, *, progress: Callable[[str], None] | None = None
) -> dict[str, dict[str, Any]]:
    """Time the engine's cycle training and statistics pass against plain Keras, paired.

    - ``training_vs_fit``: cycle 0's training (``_Run.train``: the spec's penalties, validation after
      every epoch, the progress callback) against ``model.fit`` of the same architecture for the same
      epochs and batch size, without validation.
    - ``training_vs_fit_with_validation``: the same, the plain fit also validating every epoch.
    - ``training_last_validation_vs_fit``: the cycle's training with ``validation_every`` = its epochs
      (validation after the last epoch only) against the bare fit.
    - ``stats_vs_predict``: the statistics pass over the examples a cycle measures (``stats_samples``)
      against ``model.predict`` of the whole model on them, both at the batch the engine uses, on one
      model (both traced once before timing, as in a cycle's steady state).
    - ``stats_fresh_model_vs_predict``: the same on a newly built model every repeat, so both trace
      (a pruned model is a new model: the pass traces once per cycle).

    Args:
        spec: the experiment (model, training recipe, stats_samples).
        data: its dataset.
        repeats: paired repeats per comparison.
        progress: receives a line before each comparison. Default None.

    Returns:
        The five comparisons, each as :func:`paired` returns it.
    """
    say = progress or (lambda line: None)
    run = _Run(spec, data, NullReporter())
    goal = objective(spec.training)
    epochs = spec.training.cycle0_epochs
    batch = spec.training.batch_size

    def plain_fit() -> None:
        model = build_model(spec.model)
        compile_model(model, spec.training, goal)
        model.fit(run.x_train, run.y_train, batch_size=batch, epochs=epochs, shuffle=True, verbose=0)

    def plain_fit_validated() -> None:
        model = build_model(spec.model)
        compile_model(model, spec.training, goal)
        model.fit(
            run.x_train,
            run.y_train,
            batch_size=batch,
            epochs=epochs,
            validation_data=(run.x_test, run.y_test),
            shuffle=True,
            verbose=0,
        )

    def cycle_training() -> None:
        run.train(build_model(spec.model, spec.training, run.prunable), 0)

    last_only = spec.model_copy(
        update={"training": spec.training.model_copy(update={"validation_every": max(epochs, 1)})}
    )
    run_last_only = _Run(last_only, data, NullReporter())

    def cycle_training_last_validation() -> None:
        run_last_only.train(build_model(spec.model, spec.training, run.prunable), 0)

    keras.utils.set_random_seed(spec.seed)
    say(f"training vs model.fit: {repeats} paired repeats of {epochs} epoch(s)")
    training = paired(plain_fit, cycle_training, repeats)
    say(f"training vs model.fit with validation: {repeats} paired repeats")
    validated = paired(plain_fit_validated, cycle_training, repeats)
    say(f"training validating after the last epoch only vs model.fit: {repeats} paired repeats")
    last_validated = paired(plain_fit, cycle_training_last_validation, repeats)
    statistics_passes = measure_statistics(spec, run, repeats, progress=say)
    return {
        "training_vs_fit": training,
        "training_vs_fit_with_validation": validated,
        "training_last_validation_vs_fit": last_validated,
        **statistics_passes,
    }


def measure_statistics(
    spec: ExperimentSpec, run: _Run, repeats: int, *, progress: Callable[[str], None] | None = None
) -> dict[str, dict[str, Any]]:
    """Time the statistics pass against ``model.predict``, paired: ``stats_vs_predict`` and
    ``stats_fresh_model_vs_predict`` as :func:`measure_overheads` describes them, and where the C
    kernel was built, ``stats_xla_vs_predict``: the pass with XLA's reductions instead (as an install
    without the kernel runs it).

    Args:
        spec: the experiment (model, batch size).
        run: its prepared run (the examples a cycle measures, its prunable groups).
        repeats: paired repeats per comparison.
        progress: receives a line before each comparison. Default None.
    """
    say = progress or (lambda line: None)
    model = build_model(spec.model)
    stats_batch = max(spec.training.batch_size, 1024)  # what the engine's cycle uses

    def plain_predict() -> None:
        model.predict(run.x_stats, batch_size=stats_batch, verbose=0)

    def statistics_pass() -> None:
        measure(model, spec.model, run.prunable, run.x_stats, batch_size=stats_batch)

    def fresh_predict() -> None:
        build_model(spec.model).predict(run.x_stats, batch_size=stats_batch, verbose=0)

    def fresh_statistics_pass() -> None:
        measure(build_model(spec.model), spec.model, run.prunable, run.x_stats, batch_size=stats_batch)

    def xla_statistics_pass() -> None:
        with fold_kernel.switched_off():
            statistics_pass()

    keras.utils.set_random_seed(spec.seed)
    plain_predict()  # warm both paths once
    statistics_pass()
    say(f"statistics pass vs model.predict on {len(run.x_stats):,} examples: {repeats} paired repeats")
    stats = paired(plain_predict, statistics_pass, repeats)
    say(f"the same on a fresh model each time (both trace): {repeats} paired repeats")
    fresh = paired(fresh_predict, fresh_statistics_pass, repeats)
    if not fold_kernel.available():
        return {"stats_vs_predict": stats, "stats_fresh_model_vs_predict": fresh}
    xla_statistics_pass()  # trace it
    say(f"the pass with XLA's reductions instead of the C kernel: {repeats} paired repeats")
    xla = paired(plain_predict, xla_statistics_pass, repeats)
    return {"stats_vs_predict": stats, "stats_fresh_model_vs_predict": fresh, "stats_xla_vs_predict": xla}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    spec = throughput_spec(args.samples, args.epochs)
    data = load_dataset(spec.dataset, seed=0, local_paths=True)
    results = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__},
        "samples": args.samples,
        "epochs": args.epochs,
        **measure_overheads(spec, data, args.repeats),
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
