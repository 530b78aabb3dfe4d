"""Run an experiment in this process: progress bars, a per-cycle table and a results directory.

This is what ``prunelab run`` does after it has validated the spec. The engine reports progress
through a ``Reporter``; here that reporter draws tqdm bars (one for cycles, one for the epochs of the
current cycle) and turns Ctrl-C into a clean stop after the current epoch. A second Ctrl-C aborts at
once.

The output directory holds:
    spec.yaml     the complete spec (presets expanded, defaults filled in), written before training.
    results.json  the spec, library versions, why the cycles stopped, the final cycle and every
                  cycle's ``CycleResult.summary()``.
    final.keras   the final trained model.
"""

from __future__ import annotations

import json
import math
import platform
import re
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any

import keras
import numpy as np
import tensorflow as tf
import yaml
from tqdm import tqdm

from prunespec import datapaths
from prunespec.spec import ExperimentSpec, load_spec
from prunespec.stops import StopReason
from worker.engine.cycle import ExperimentCancelled, run_cycles
from worker.engine.data import DatasetError, load_dataset
from worker.engine.results import CycleResult, EpochRecord, ExperimentResult
from worker.engine.training import objective

#: Errors that mean the input is wrong (not a bug): the CLI reports them without a traceback.
USER_ERRORS: tuple[type[Exception], ...] = (DatasetError,)
#: Where runs go when no output directory is given, relative to the working directory.
RUNS_DIR = Path("runs")


@dataclass(frozen=True)
class LocalRun:
    """A finished local run: the engine's result and where it was written."""

    result: ExperimentResult
    out_dir: Path


# --------------------------------------------------------------------------------------------- progress


class ProgressReporter:
    """A Reporter that draws progress bars and can be cancelled.

    The cycles bar counts cycles that ran (a rejected one too); after a normal stop :meth:`finish` makes
    its total the count, so it ends full however early the run stopped.

    Args:
        max_cycles: the cycles bar's total while running (the run may stop earlier).
        metric_name: what the epoch bar calls the metric. Default "metric".
        quiet: draw nothing. Default False.
        stream: where bars go. Default ``sys.stderr``.
    """

    def __init__(
        self,
        max_cycles: int,
        *,
        metric_name: str = "metric",
        quiet: bool = False,
        stream: IO[str] | None = None,
    ):
        self._metric_name = metric_name
        self._quiet = quiet
        self._stream = stream if stream is not None else sys.stderr
        self._cancel = threading.Event()
        self._cycles = tqdm(
            total=max_cycles, desc="cycles", unit="cycle", position=0, disable=quiet, file=self._stream
        )
        self._epochs: tqdm[Any] | None = None
        self._epochs_cycle = -1

    def _epoch_bar(self, record: EpochRecord) -> tqdm[Any]:
        if self._epochs is None or self._epochs_cycle != record.cycle:
            if self._epochs is not None:
                self._epochs.close()
            self._epochs = tqdm(
                total=record.epochs,
                desc=f"cycle {record.cycle} epochs",
                unit="epoch",
                position=1,
                leave=False,
                disable=self._quiet,
                file=self._stream,
            )
            self._epochs_cycle = record.cycle
        return self._epochs

    def on_epoch(self, record: EpochRecord) -> None:
        """Advance the epoch bar and show the epoch's loss and metric."""
        bar = self._epoch_bar(record)
        bar.set_postfix(epoch_postfix(record, self._metric_name), refresh=False)
        bar.update(1)

    def on_cycle(self, result: CycleResult, trained: keras.Model, pruned: keras.Model | None) -> None:
        """Advance the cycles bar and show the widths handed to the next cycle."""
        if self._epochs is not None:
            self._epochs.close()
            self._epochs = None
        self._cycles.set_postfix_str(widths_text(prunable_widths(result), result.widths_after), refresh=False)
        self._cycles.update(1)

    def cancelled(self) -> bool:
        """True once ``cancel`` was called (by the first Ctrl-C)."""
        return self._cancel.is_set()

    def cancel(self) -> None:
        """Ask the engine to stop after the current epoch."""
        if not self._cancel.is_set():
            self._cancel.set()
            self._cycles.set_description_str("cycles (stopping after this epoch; Ctrl-C again aborts)")

    def finish(self) -> None:
        """After a normal stop: the cycles bar's total becomes the cycles that ran, so it ends full."""
        self._cycles.total = self._cycles.n
        self._cycles.refresh()

    def close(self) -> None:
        """Close the bars."""
        if self._epochs is not None:
            self._epochs.close()
            self._epochs = None
        self._cycles.close()


def epoch_postfix(record: EpochRecord, metric_name: str = "metric") -> dict[str, str]:
    """The loss and metric of one epoch, as short strings for a progress bar."""
    postfix = {"loss": f"{record.loss:.4g}", metric_name: f"{record.metric:.4g}"}
    if record.val_loss is not None:
        postfix["val_loss"] = f"{record.val_loss:.4g}"
    if record.val_metric is not None:
        postfix[f"val_{metric_name}"] = f"{record.val_metric:.4g}"
    return postfix


@contextmanager
def sigint_cancels(reporter: ProgressReporter) -> Iterator[None]:
    """While inside, the first Ctrl-C cancels ``reporter``; the next one raises KeyboardInterrupt.

    Outside the main thread (where signal handlers cannot be set) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handle(signum: int, frame: FrameType | None) -> None:
        reporter.cancel()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGINT, handle)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# --------------------------------------------------------------------------------------------- table


def widths_text(before: dict[str, int], after: dict[str, int]) -> str:
    """Widths per layer, e.g. ``hidden 1000→613`` (``hidden 613`` when unchanged).

    Args:
        before: widths a cycle trained.
        after: widths it handed on; layers missing here are shown unchanged.
    """
    parts = []
    for name, width in before.items():
        new = after.get(name, width)
        parts.append(f"{name} {width}→{new}" if new != width else f"{name} {width}")
    return ", ".join(parts)


def prunable_widths(cycle: CycleResult) -> dict[str, int]:
    """Widths of the layers of a cycle's model that can shrink (the output layer never does)."""
    prunable = set(cycle.spec.prunable_names())
    return {name: width for name, width in cycle.widths.items() if name in prunable}


def si(value: float) -> str:
    """A count with an SI suffix: 1234 → '1.23k', 4.5e6 → '4.5M'."""
    for factor, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g}{suffix}"
    return f"{value:g}"


def cycle_table_line(cycle: CycleResult, final: bool) -> list[str]:
    """One table row: cycle, widths, params, FLOPs, val loss, val metric, removed, seconds.

    Args:
        cycle: the cycle.
        final: whether its model is the result (marked ``*``).
    """
    marks = ("*" if final else "") + ("" if cycle.accepted else " rejected")
    seconds = cycle.train_seconds + cycle.stats_seconds + cycle.prune_seconds
    return [
        f"{cycle.index}{marks}",
        widths_text(prunable_widths(cycle), cycle.widths_after),
        f"{cycle.params:,}",
        si(cycle.flops),
        f"{cycle.val_loss:.4g}",
        f"{cycle.val_metric:.4g}",
        str(cycle.removed_count),
        f"{seconds:.1f}",
    ]


def format_table(result: ExperimentResult) -> str:
    """The per-cycle table, columns aligned; ``*`` marks the final cycle."""
    metric = result.cycles[0].metric_name if result.cycles else "metric"
    header = ["cycle", "widths", "params", "FLOPs", "val loss", f"val {metric}", "removed", "seconds"]
    rows = [header] + [
        cycle_table_line(cycle, position == result.final_position)
        for position, cycle in enumerate(result.cycles)
    ]
    sizes = [max(len(row[col]) for row in rows) for col in range(len(header))]
    left = {0, 1}
    lines = [
        "  ".join(
            cell.ljust(size) if col in left else cell.rjust(size)
            for col, (cell, size) in enumerate(zip(row, sizes, strict=True))
        ).rstrip()
        for row in rows
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- files


def slugify(name: str) -> str:
    """A file-name-safe lower-case slug of a spec name (``experiment`` when nothing is left)."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60].strip("-")
    return slug or "experiment"


def default_out_dir(spec: ExperimentSpec, now: datetime | None = None, root: Path = RUNS_DIR) -> Path:
    """``runs/<spec name slug>-<UTC timestamp>``, e.g. ``runs/sum-vanilla-20261122T093000Z``."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return root / f"{slugify(spec.name)}-{moment:%Y%m%dT%H%M%SZ}"


def jsonable(value: Any) -> Any:
    """Plain JSON data: NumPy scalars and arrays as Python numbers and lists, NaN and ±inf as None."""
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def versions() -> dict[str, str]:
    """Versions of Python, TensorFlow and Keras this run used."""
    return {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__}


def results_document(spec: ExperimentSpec, result: ExperimentResult | None) -> dict[str, Any]:
    """What results.json holds: spec, versions, stop reason, final cycle, every cycle's summary.

    Args:
        spec: the experiment.
        result: the engine's result; None when the run was cancelled before a cycle finished
            (stop reason "cancelled", no final cycle, no cycles).
    """
    return jsonable(
        {
            "spec": spec.model_dump(mode="json"),
            "versions": versions(),
            "stop_reason": result.stop_reason if result is not None else StopReason.cancelled,
            # a position in "cycles" (the import's results.final_index reads it so)
            "final_index": result.final_position if result is not None else None,
            "cycles": [cycle.summary() for cycle in result.cycles] if result is not None else [],
        }
    )


def write_spec(spec: ExperimentSpec, out_dir: Path) -> None:
    """Write the complete spec to ``out_dir/spec.yaml`` (it loads back to an equal spec)."""
    text = yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
    (out_dir / "spec.yaml").write_text(text, encoding="utf-8")


def write_results(spec: ExperimentSpec, result: ExperimentResult | None, out_dir: Path) -> None:
    """Write ``results.json`` and, when there is a final model, ``final.keras`` into ``out_dir``."""
    document = results_document(spec, result)
    (out_dir / "results.json").write_text(json.dumps(document, indent=2, allow_nan=False) + "\n", "utf-8")
    if result is not None and result.model is not None:
        result.model.save(out_dir / "final.keras")


# --------------------------------------------------------------------------------------------- run


def run_local(
    spec: ExperimentSpec,
    *,
    out_dir: Path | None = None,
    data_dir: Path | None = None,
    quiet: bool = False,
    stream: IO[str] | None = None,
) -> LocalRun:
    """Run an experiment in this process and write its results.

    Args:
        spec: the experiment.
        out_dir: where to write. Default ``default_out_dir(spec)``. Created when missing.
        data_dir: searched for dataset files before the engine's default directories. Default None.
        quiet: no progress bars and no table. Default False.
        stream: where the table goes. Default ``sys.stdout``.

    Returns:
        The engine's result and the output directory. ``result.stop_reason`` is ``"cancelled"`` after
        Ctrl-C; what finished is written all the same.

    Raises:
        DatasetError: the dataset cannot be loaded or does not fit the model (see ``USER_ERRORS``).
        ExperimentCancelled: Ctrl-C before the first cycle finished (results.json then says so).
    """
    data = load_dataset(
        spec.dataset, seed=spec.seed, data_dirs=datapaths.data_dirs(data_dir), local_paths=True
    )
    target = out_dir if out_dir is not None else default_out_dir(spec)
    target.mkdir(parents=True, exist_ok=True)
    write_spec(spec, target)
    reporter = ProgressReporter(
        spec.pruning.max_cycles, metric_name=objective(spec.training).metric_name, quiet=quiet
    )
    try:
        with sigint_cancels(reporter):
            result = run_cycles(spec, data, reporter)
        if result.stop_reason != StopReason.cancelled:
            reporter.finish()
    except ExperimentCancelled:
        write_results(spec, None, target)
        raise
    finally:
        reporter.close()
    write_results(spec, result, target)
    if not quiet:
        out = stream if stream is not None else sys.stdout
        print(format_table(result), file=out)
        print(f"stopped: {result.stop_reason}; final cycle {result.final.index}; wrote {target}", file=out)
    return LocalRun(result=result, out_dir=target)


def run_file(path: str | Path, **options: Any) -> LocalRun:
    """Load a spec file and ``run_local`` it (for notebooks and scripts).

    Args:
        path: a YAML or JSON spec.
        **options: passed to ``run_local``.

    Raises:
        FileNotFoundError, ValueError, pydantic.ValidationError: as ``prunespec.spec.load_spec``.
        DatasetError: as ``run_local``.
    """
    return run_local(load_spec(path), **options)
