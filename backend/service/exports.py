"""One experiment as a download: a JSON document (spec, summary, cycles, epochs) or CSV rows of its cycles
or its epochs. Reads through ``backend.service.queries``; writes nothing.

CSV cells that a spreadsheet would run as a formula (text starting with ``=``, ``+``, ``-``, ``@``) are
prefixed with ``'``; numbers are written as numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from backend.schemas import CycleDetail, EpochOut, ExperimentSummary
from backend.schemas_exchange import ExperimentExport, ExportQuery
from backend.service import queries

#: Media types of the two formats.
MEDIA_TYPES = {"json": "application/json", "csv": "text/csv; charset=utf-8"}
#: Columns of the cycles CSV before the per-layer widths, and after them.
CYCLE_HEAD = ("cycle", "status", "final", "pruned_from")
CYCLE_TAIL = (
    "params",
    "flops",
    "metric_name",
    "loss",
    "metric",
    "val_loss",
    "val_metric",
    "removed_units",
    "train_seconds",
    "stats_seconds",
    "prune_seconds",
)
#: Columns of the epochs CSV.
EPOCH_COLUMNS = ("cycle", "epoch", "loss", "metric", "val_loss", "val_metric", "seconds", "created_at")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class ExportFile:
    """A download: its bytes, media type and file name."""

    filename: str
    media_type: str
    content: bytes


def experiment_document(session: Session, experiment_id: int) -> ExperimentExport:
    """The experiment's spec, summary, cycles (in full) and epochs in one document.

    Raises:
        NotFound: no such experiment.
    """
    detail = queries.get_experiment(session, experiment_id)
    return ExperimentExport(
        experiment=ExperimentSummary.model_validate(detail),
        spec=detail.spec,
        notes=detail.notes,
        final_cycle=detail.final_cycle,
        cycles=queries.list_cycles(session, experiment_id),
        epochs=queries.list_epochs(session, experiment_id),
    )


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return f"'{value}"
    return value


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """CSV with a header line, formula-looking text defused, None as an empty cell."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([_cell(name) for name in header])
    writer.writerows([_cell(value) for value in row] for row in rows)
    return out.getvalue()


def _final_index(cycles: Sequence[CycleDetail], final_cycle: int | None) -> int | None:
    """The kept cycle: the recorded ``final_cycle``, else (still running) the newest accepted one."""
    if final_cycle is not None:
        return final_cycle
    accepted = [cycle.index for cycle in cycles if cycle.accepted]
    return accepted[-1] if accepted else None


def cycles_csv(cycles: Sequence[CycleDetail], final_cycle: int | None) -> str:
    """One row per cycle: status (kept or rejected), whether it is the final model, the cycle its model
    was pruned from, the width each layer trained with (``width_<layer>``), params, FLOPs, losses,
    metrics, units removed and timings."""
    layers = list(dict.fromkeys(name for cycle in cycles for name in cycle.widths))
    final = _final_index(cycles, final_cycle)
    rows = [
        [
            cycle.index,
            "kept" if cycle.accepted else "rejected",
            "yes" if cycle.index == final else "",
            cycle.pruned_from,
            *(cycle.widths.get(name) for name in layers),
            cycle.params,
            cycle.flops,
            cycle.metric_name,
            cycle.loss,
            cycle.metric,
            cycle.val_loss,
            cycle.val_metric,
            sum(len(units) for units in cycle.removed.values()),
            cycle.train_seconds,
            cycle.stats_seconds,
            cycle.prune_seconds,
        ]
        for cycle in cycles
    ]
    return csv_text([*CYCLE_HEAD, *(f"width_{name}" for name in layers), *CYCLE_TAIL], rows)


def epochs_csv(epochs: Sequence[EpochOut]) -> str:
    """One row per training epoch, by cycle then epoch."""
    rows = [
        [e.cycle, e.epoch, e.loss, e.metric, e.val_loss, e.val_metric, e.seconds, e.created_at.isoformat()]
        for e in epochs
    ]
    return csv_text(EPOCH_COLUMNS, rows)


def export_experiment(session: Session, experiment_id: int, query: ExportQuery) -> ExportFile:
    """The download ``query`` asks for.

    Args:
        session: an open session.
        experiment_id: the experiment.
        query: ``format`` json or csv; for csv, ``what`` cycles or epochs.

    Returns:
        The file, named ``experiment-<id>.json``, ``experiment-<id>-cycles.csv`` or ``...-epochs.csv``.

    Raises:
        NotFound: no such experiment.
    """
    if query.format == "json":
        document = experiment_document(session, experiment_id)
        content = document.model_dump_json(indent=2).encode("utf-8")
        return ExportFile(f"experiment-{experiment_id}.json", MEDIA_TYPES["json"], content)
    if query.what == "epochs":
        text = epochs_csv(queries.list_epochs(session, experiment_id))
    else:
        detail = queries.get_experiment(session, experiment_id)
        text = cycles_csv(queries.list_cycles(session, experiment_id), detail.final_cycle)
    return ExportFile(
        f"experiment-{experiment_id}-{query.what}.csv", MEDIA_TYPES["csv"], text.encode("utf-8")
    )
