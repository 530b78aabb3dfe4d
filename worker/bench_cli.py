"""``prunelab bench`` and ``prunelab crossover``: the work behind the commands, and their tables.

``backend.cli`` parses and validates the command line, then imports this module. Importing it imports
no TensorFlow: each function imports what it needs (``crossover_on_server`` needs none).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import httpx
import pydantic

from backend.schemas_benchmarks import CrossoverCreate
from prunespec.spec import ExperimentSpec

if TYPE_CHECKING:
    import keras

    from worker.benchmarking import BenchmarkRun
    from worker.engine.data import Dataset

#: Exit code when the command ran but a format failed (or a crossover run failed).
EXIT_FAILED = 1
#: Seconds between two reads of a crossover run on a server.
POLL_SECONDS = 1.0
FINISHED = ("succeeded", "failed")


class BenchInputError(Exception):
    """The command's input cannot be used (a missing file, an unknown experiment); the message says why."""


# --------------------------------------------------------------------------------------------- tables


def _number(value: float | int | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def benchmark_table(
    run: BenchmarkRun, metric_name: str | None, *, with_cycles: bool, index_label: str = "cycle"
) -> list[str]:
    """The benchmark as text lines: one row per model and format, then the failures' reasons.

    Args:
        run: the benchmark.
        metric_name: the metric's name for the fidelity columns (None: no fidelity was measured).
        with_cycles: start each row with the cycle (or model) index.
        index_label: what that first column is called. Default "cycle".
    """
    metric = metric_name or "metric"
    head = f"{index_label:>5} " if with_cycles else ""
    lines = [
        head + f"{'format':<13} {'status':<6} {'bytes':>9} {'bits':>11} {'stored bits':>11} "
        f"{'median µs':>9} {'p90 µs':>8} {'keras ' + metric:>15} {'tflite ' + metric:>16}"
    ]
    reasons = []
    for result in run.results:
        latency = result.latency
        row = f"{result.cycle_index:>5} " if with_cycles else ""
        row += (
            f"{result.format:<13} {result.status:<6} "
            f"{_number(None if result.flatbuffer is None else len(result.flatbuffer), ',d'):>9} "
            f"{_number(result.nominal_bits, ',d'):>11} {_number(result.stored_bits, ',d'):>11} "
            f"{_number(None if latency is None else latency.median_us, '.1f'):>9} "
            f"{_number(None if latency is None else latency.p90_us, '.1f'):>8} "
            f"{_number(None if result.keras is None else result.keras.metric, '.4f'):>15} "
            f"{_number(None if result.tflite is None else result.tflite.metric, '.4f'):>16}"
        )
        lines.append(row)
        if result.error:
            where = f"{index_label} {result.cycle_index} {result.format}" if with_cycles else result.format
            reasons.append(f"  {where}: {result.error}")
    return lines + reasons


def crossover_table(
    timings: Mapping[str, Sequence[Mapping[str, Any]]], crossover: Mapping[str, float | None]
) -> list[str]:
    """Crossover results as text lines: per back end, its crossover density and one row per density."""
    lines: list[str] = []
    for backend, points in timings.items():
        density = crossover.get(backend)
        found = "none (sparse never faster)" if density is None else f"{density:.0%}"
        lines.append(f"{backend}: crossover {found}")
        lines.append(f"{'density':>8} {'non-zeros':>10} {'dense µs':>9} {'sparse µs':>10} {'speed-up':>8}")
        for point in points:
            lines.append(
                f"{point['density']:>8.0%} {point['nonzeros']:>10,} {point['dense_us']:>9.1f} "
                f"{point['sparse_us']:>10.1f} {point['speedup']:>7.2f}x"
            )
    return lines


def _print(lines: Sequence[str], out: IO[str] | None) -> None:
    print("\n".join(lines), file=out or sys.stdout, flush=True)


# --------------------------------------------------------------------------------------------- bench


def _dataset_spec(name: str, model: Any) -> ExperimentSpec:
    """A spec around a saved model for a built-in data set: its loss follows from the model's shape.

    Raises:
        BenchInputError: the model is outside the layer language, or the data set does not fit it.
    """
    from worker.engine.build import model_to_spec

    try:
        model_spec = model_to_spec(model)
    except (TypeError, ValueError) as error:
        raise BenchInputError(
            f"cannot read the model's architecture ({error}); pass --data SPEC.yaml"
        ) from None
    output = tuple(model_spec.output_shape)
    if name == "sum":
        dataset: dict[str, Any] = {"name": "sum"}
        loss = "mse"
    elif output == tuple(model_spec.input_shape):
        dataset, loss = {"name": name, "target": "input"}, "mse"
    else:
        dataset, loss = {"name": name, "target": "labels"}, "crossentropy"
    raw = {"name": "bench", "model": model_spec.model_dump(), "dataset": dataset, "training": {"loss": loss}}
    try:
        return ExperimentSpec.model_validate(raw)
    except pydantic.ValidationError as error:
        raise BenchInputError(f"data set '{name}' does not fit the model: {error}") from None


@dataclass(frozen=True)
class ConnectionPruningOptions:
    """``prunelab bench --sparsity``: prune the model's connections by magnitude before benchmarking.

    Attributes:
        sparsity: the fraction of every weighted layer's kernel set to zero (smallest magnitudes first).
        epochs: fine-tuning epochs on the data set's training split, the zeros held at zero.
        save: where the pruned model is written; None: not written.
    """

    sparsity: float
    epochs: int = 1
    save: Path | None = None


def bench_model(
    path: Path,
    *,
    overrides: Mapping[str, Any],
    data: ExperimentSpec | str | None = None,
    data_dirs: Sequence[Path] = (),
    connections: ConnectionPruningOptions | None = None,
    out: IO[str] | None = None,
) -> int:
    """Benchmark a saved ``.keras`` model in this process and print the table.

    Args:
        path: the model file.
        overrides: ``benchmark`` settings (``formats``, ``runs``, ``warmup``, ``threads``,
            ``fidelity_samples``).
        data: a spec whose data set measures fidelity and calibrates ``int8_full``, or a built-in data
            set's name. Default None: timing on a random input only.
        data_dirs: where data set files are looked for first.
        connections: also prune a copy's connections by magnitude, fine-tune it on ``data`` and
            benchmark it beside the model as saved (rows "0" and "1", timed in the same loop; the
            pruned copy's kernels stored in TFLite's sparse format). Needs ``data``. Default None.
        out: where the table goes. Default None: stdout.

    Returns:
        0, or ``EXIT_FAILED`` when a format failed.

    Raises:
        BenchInputError: the file is missing or not a model, the data set does not fit it, or
            ``connections`` is given without a data set.
    """
    from prunespec import datapaths
    from prunespec.spec import BenchmarkSpec
    from worker.benchmarking import (
        BenchmarkInputs,
        BenchmarkModel,
        benchmark_cycles,
        experiment_inputs,
        random_sample,
    )
    from worker.engine.build import model_to_spec
    from worker.engine.data import load_dataset
    from worker.resume import model_from_bytes

    try:
        model = model_from_bytes(path.read_bytes())
    except FileNotFoundError:
        raise BenchInputError(f"{path}: no such file") from None
    except (OSError, ValueError) as error:
        raise BenchInputError(f"{path}: cannot load the model: {error}") from None
    try:
        architecture = model_to_spec(model)
    except (TypeError, ValueError):
        architecture = None
    spec = _dataset_spec(data, model) if isinstance(data, str) else data
    dirs = datapaths.data_dirs(*data_dirs)
    loaded: Dataset | None = None
    if spec is not None:
        try:
            loaded = load_dataset(spec.dataset, seed=spec.seed, data_dirs=dirs, local_paths=True)
        except (OSError, ValueError) as error:  # DatasetError is a ValueError
            raise BenchInputError(f"cannot load the data set: {error}") from None
        inputs = experiment_inputs(spec, loaded)
        if inputs.data_error:
            raise BenchInputError(f"cannot load the data set: {inputs.data_error}")
    else:
        inputs = BenchmarkInputs(x_sample=random_sample(tuple(model.input_shape[1:])))
    entries = [BenchmarkModel(0, model, architecture)]
    if connections is not None:
        if spec is None or loaded is None:
            raise BenchInputError("--sparsity fine-tunes the pruned model: give its data with --data")
        pruned = _prune_connections(model, spec, loaded, connections, out)
        entries.append(BenchmarkModel(1, pruned, architecture, sparse_weights=True))
    settings = BenchmarkSpec.model_validate(dict(overrides))
    run = benchmark_cycles(entries, settings, inputs)
    metric = None if inputs.goal is None else inputs.goal.metric_name
    _print(benchmark_table(run, metric, with_cycles=connections is not None, index_label="model"), out)
    if connections is not None and run.latency_speedup is not None:
        speedup = run.latency_speedup
        print(f"float32 speed-up of the pruned model over the saved one: {speedup:.2f}x", file=out)
    return EXIT_FAILED if any(result.status != "ok" for result in run.results) else 0


def _prune_connections(
    model: keras.Model,
    spec: ExperimentSpec,
    data: Dataset,
    options: ConnectionPruningOptions,
    out: IO[str] | None,
) -> keras.Model:
    """A copy of ``model`` with its connections pruned by magnitude and fine-tuned; prints what it did."""
    import keras

    from worker.engine.connections import prune_connections
    from worker.engine.data import fit_to_model
    from worker.engine.training import objective, targets

    fitted = fit_to_model(data, spec.model, spec.training.loss)
    goal = objective(spec.training)
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    y_train = targets(fitted.y_train, goal, fitted.num_classes)
    result = prune_connections(
        copy, options.sparsity, fitted.x_train, y_train, spec.training, epochs=options.epochs
    )
    zeros = ", ".join(f"{name} {100 * value:.1f}%" for name, value in result.sparsity.items())
    print(f"model 0: as saved; model 1: {options.sparsity:.0%} of every kernel pruned by magnitude", file=out)
    print(f"zeros per kernel after {options.epochs} fine-tuning epoch(s): {zeros}", file=out)
    if options.save is not None:
        copy.save(options.save)
        print(f"wrote the pruned model to {options.save}", file=out)
    return copy


def bench_experiment(
    experiment_id: int,
    *,
    cycles: str | None,
    overrides: Mapping[str, Any],
    data_dirs: Sequence[Path] = (),
    out: IO[str] | None = None,
) -> int:
    """Benchmark a succeeded experiment of the configured database in this process; store and print it.

    Args:
        experiment_id: the experiment.
        cycles: ``first_last`` or ``every``; None: the spec's choice.
        overrides: ``benchmark`` settings to use instead of the spec's.
        data_dirs: where data set files are looked for first.
        out: where the table goes. Default None: stdout.

    Returns:
        0, or ``EXIT_FAILED`` when a format failed.

    Raises:
        BenchInputError: the database is not migrated, or the experiment is missing or not succeeded.
    """
    from backend.db import make_engine, make_session_factory, session_scope
    from backend.migrate import MigrationRequired, require_head
    from backend.service.errors import NotFound
    from backend.service.queries import get_summary
    from backend.settings import get_settings
    from prunespec import datapaths
    from worker.experiment_benchmarks import rerun

    settings = get_settings()
    engine = make_engine(settings)
    try:
        require_head(engine)
        sessions = make_session_factory(engine)
        with session_scope(sessions) as session:
            summary = get_summary(session, experiment_id)
        if summary.status != "succeeded":
            raise BenchInputError(
                f"experiment {experiment_id} is {summary.status}; only a succeeded one is benchmarked"
            )
        dirs = datapaths.data_dirs(*data_dirs, settings.data_dir)
        measured = rerun(sessions, experiment_id, cycles, data_dirs=dirs, overrides=dict(overrides))
    except (MigrationRequired, NotFound) as error:
        raise BenchInputError(str(error)) from None
    finally:
        engine.dispose()
    if measured is None:
        raise BenchInputError(f"experiment {experiment_id} has no cycles to benchmark")
    _print(benchmark_table(measured.run, summary.metric_name, with_cycles=True), out)
    speedup = measured.run.latency_speedup
    if speedup is not None:
        final, first = measured.final_cycle, measured.cycles[0]
        print(f"float32 speed-up of cycle {final} over cycle {first}: {speedup:.2f}x", file=out)
    print(f"stored as experiment {experiment_id}'s benchmarks ({settings.database_url})", file=out)
    return EXIT_FAILED if any(result.status != "ok" for result in measured.run.results) else 0


# --------------------------------------------------------------------------------------------- crossover


def crossover_here(request: CrossoverCreate, out: IO[str] | None = None) -> int:
    """Run a crossover in this process (TensorFlow with ``threads`` intra-op threads) and print it.

    Returns:
        0, or ``EXIT_FAILED`` when a sweep failed (the reason is printed).
    """
    import tensorflow as tf

    from worker.crossover import run_sweeps

    try:  # only before TensorFlow's first op; later (in a process that already ran it) they stay as set
        tf.config.threading.set_intra_op_parallelism_threads(request.threads)
        tf.config.threading.set_inter_op_parallelism_threads(request.threads)
    except RuntimeError:
        pass
    try:
        sweeps = run_sweeps(request)
    except (ValueError, RuntimeError) as error:
        print(f"crossover failed: {type(error).__name__}: {error}", file=out)
        return EXIT_FAILED
    timings = {backend: [vars(point) for point in sweep.points] for backend, sweep in sweeps.items()}
    _print(crossover_table(timings, {backend: sweep.crossover for backend, sweep in sweeps.items()}), out)
    return 0


def crossover_on_server(
    server: str, request: CrossoverCreate, *, timeout: float = 3600.0, out: IO[str] | None = None
) -> int:
    """Queue a crossover run on a prunelab server, wait for it, and print it.

    Args:
        server: the server's URL.
        request: the run.
        timeout: seconds to wait for it to finish. Default 3600.
        out: where the table goes. Default None: stdout.

    Returns:
        0, or ``EXIT_FAILED`` when the run failed (its error is printed).

    Raises:
        BenchInputError: the server is unreachable, refused the request, or the run did not finish in time.
    """
    base = server.rstrip("/")
    try:
        response = httpx.post(f"{base}/api/crossover", json=request.model_dump(mode="json"), timeout=30)
        if response.status_code != 202:
            raise BenchInputError(
                f"the server refused the run: HTTP {response.status_code}: {response.text[:500]}"
            )
        url = f"{base}{response.json()['url']}"
        print(f"queued crossover run {response.json()['id']}: {url}", file=out, flush=True)
        deadline = time.monotonic() + timeout
        while True:
            run = httpx.get(url, timeout=30).raise_for_status().json()
            if run["status"] in FINISHED:
                break
            if time.monotonic() > deadline:
                raise BenchInputError(
                    f"crossover run {run['id']} is still {run['status']} after {timeout:.0f} s"
                )
            time.sleep(POLL_SECONDS)
    except httpx.HTTPError as error:
        raise BenchInputError(f"cannot reach {server}: {error}") from None
    if run["status"] == "failed":
        print(f"crossover run {run['id']} failed: {run['error']}", file=out)
        return EXIT_FAILED
    _print(crossover_table(run["timings"], run["crossover"]), out)
    return 0
