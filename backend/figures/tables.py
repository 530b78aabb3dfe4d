"""Plain rows for tables: the architecture diff between cycles, the compare table and its CSV export.

Nothing here is HTML: strings stay as the user typed them, and whoever renders them must treat them
as text (``textContent``, never ``innerHTML``). The CSV export defuses spreadsheet formulas instead.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from backend.figures.common import number
from backend.figures.inputs import CycleRow, ExperimentSeries

#: A table cell: a number, a text or empty.
Cell = int | float | str | None

#: What happened to a layer between two models.
Change = Literal["added", "dropped", "pruned", "grown", "unchanged"]

#: First characters that make a spreadsheet read a cell as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class LayerDiff:
    """One layer of a model before and after (None where the layer, or the number, is absent).

    Attributes:
        name: the layer's name.
        type: its type (``dense``, ``conv2d``, ...; None when unknown).
        width_before, width_after: units (dense) or channels (conv); None for unweighted layers.
        params_before, params_after: the layer's parameters.
        flops_before, flops_after: the layer's FLOPs per example.
        change: "added" (only after), "dropped" (only before), "pruned" (fewer units), "grown" (more
            units) or "unchanged".
    """

    name: str
    type: str | None
    width_before: int | None
    width_after: int | None
    params_before: int | None
    params_after: int | None
    flops_before: int | None
    flops_after: int | None
    change: Change

    @property
    def units_removed(self) -> int | None:
        """``width_before − width_after`` when both are known."""
        if self.width_before is None or self.width_after is None:
            return None
        return self.width_before - self.width_after

    def as_dict(self) -> dict[str, Any]:
        """The row as JSON-ready data, with ``units_removed``."""
        return {**asdict(self), "units_removed": self.units_removed}


def _layers(cycle: CycleRow) -> dict[str, tuple[str | None, int | None, int | None]]:
    """(type, params, flops) by layer name in model order: layer costs first, then other widths."""
    layers: dict[str, tuple[str | None, int | None, int | None]] = {
        cost.name: (cost.type or None, cost.params, cost.flops) for cost in cycle.layer_costs
    }
    for name in cycle.widths:
        layers.setdefault(name, (None, None, None))
    return layers


def architecture_diff(before: CycleRow, after: CycleRow | None = None) -> list[LayerDiff]:
    """Layer by layer, the model of cycle ``before`` against the model of cycle ``after``.

    Without ``after``, the diff is ``before``'s own pruning: its trained widths against the widths it
    kept (``widths_after``); the parameters after pruning are then unknown (None).

    Args:
        before: the earlier cycle (its ``layer_costs`` give types, parameters and FLOPs).
        after: the later cycle; default None (see above).

    Returns:
        one row per layer: ``before``'s layers in model order, then layers only ``after`` has.
    """
    old = _layers(before)
    new: dict[str, tuple[str | None, int | None, int | None]]
    if after is None:
        new = {name: (kind, None, None) for name, (kind, _, _) in old.items()}
        new_widths = {name: before.widths_after.get(name, width) for name, width in before.widths.items()}
    else:
        new = _layers(after)
        new_widths = dict(after.widths)
    rows: list[LayerDiff] = []
    for name in [*old, *(name for name in new if name not in old)]:
        kind_before, params_before, flops_before = old.get(name, (None, None, None))
        kind_after, params_after, flops_after = new.get(name, (None, None, None))
        width_before, width_after = before.widths.get(name), new_widths.get(name)
        rows.append(
            LayerDiff(
                name=name,
                type=kind_before or kind_after,
                width_before=width_before,
                width_after=width_after,
                params_before=params_before,
                params_after=params_after,
                flops_before=flops_before,
                flops_after=flops_after,
                change=_change(name in old, name in new, width_before, width_after),
            )
        )
    return rows


def _change(in_before: bool, in_after: bool, width_before: int | None, width_after: int | None) -> Change:
    """What happened to a layer, from where it appears and its widths."""
    if not in_before:
        return "added"
    if not in_after:
        return "dropped"
    if width_before is None or width_after is None or width_before == width_after:
        return "unchanged"
    return "pruned" if width_after < width_before else "grown"


@dataclass(frozen=True)
class CompareRow:
    """One row of the compare table: a label and one cell per experiment.

    Attributes:
        label: what the row shows ("parameters (final)", "units · dense_1", ...).
        kind: "summary" for whole-model numbers, "layer" for one layer's final width.
        values: one cell per compared experiment, in column order (None = not available).
    """

    label: str
    kind: Literal["summary", "layer"]
    values: tuple[Cell, ...]


@dataclass(frozen=True)
class CompareTable:
    """Experiments side by side: whole-model numbers, then every layer's final width.

    Attributes:
        columns: one label per experiment, "name (#id)" (plain text).
        rows: the rows, summary rows first.
    """

    columns: tuple[str, ...]
    rows: tuple[CompareRow, ...]

    def as_dict(self) -> dict[str, Any]:
        """The table as JSON-ready data."""
        return {"columns": list(self.columns), "rows": [asdict(row) for row in self.rows]}


def _summary(experiment: ExperimentSeries) -> list[Cell]:
    """The summary cells of one experiment, in :data:`SUMMARY_LABELS` order."""
    ordered = sorted(experiment.cycles, key=lambda cycle: cycle.index)
    first = ordered[0] if ordered else None
    final = experiment.final
    return [
        experiment.id,
        experiment.name,
        experiment.metric_name,
        len(ordered),
        None if final is None else final.index,
        None if first is None else first.params,
        None if final is None else final.params,
        None if first is None else first.flops,
        None if final is None else final.flops,
        None if final is None else number(final.val_metric),
    ]


SUMMARY_LABELS = (
    "experiment id",
    "name",
    "metric",
    "cycles",
    "final cycle",
    "parameters (initial)",
    "parameters (final)",
    "FLOPs (initial)",
    "FLOPs (final)",
    "validation metric (final)",
)


def compare_table(experiments: Sequence[ExperimentSeries]) -> CompareTable:
    """The final architectures of experiments side by side, with their headline numbers.

    An experiment's final architecture is the model its final cycle trained (its ``widths``). Layers
    are listed in order of first appearance across the experiments; a layer an experiment lacks has
    an empty cell.

    Args:
        experiments: the compared experiments, in column order.

    Returns:
        the table: :data:`SUMMARY_LABELS` rows, then one "units · <layer>" row per layer.
    """
    summaries = [_summary(experiment) for experiment in experiments]
    rows = [
        CompareRow(label, "summary", tuple(summary[position] for summary in summaries))
        for position, label in enumerate(SUMMARY_LABELS)
    ]
    finals = [experiment.final for experiment in experiments]
    layers: dict[str, None] = {}
    for final in finals:
        if final is not None:
            layers.update(dict.fromkeys(final.widths))
    for layer in layers:
        widths = tuple(None if final is None else final.widths.get(layer) for final in finals)
        rows.append(CompareRow(f"units · {layer}", "layer", widths))
    return CompareTable(tuple(experiment.label for experiment in experiments), tuple(rows))


def csv_cell(value: Cell) -> str:
    """One value as CSV text: numbers exactly, None empty, text defused against formulas.

    Args:
        value: a cell.

    Returns:
        the text; a string starting with ``= + - @``, a tab or a carriage return gets a leading ``'``
        so that spreadsheets show it instead of evaluating it.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        finite = number(value)
        return "" if finite is None else repr(finite)
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def compare_csv(table: CompareTable) -> str:
    """The compare table as CSV text (RFC 4180 quoting, CRLF line ends).

    Args:
        table: from :func:`compare_table`.

    Returns:
        a header line (an empty corner cell, then the experiment labels) and one line per row.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["", *(csv_cell(column) for column in table.columns)])
    for row in table.rows:
        writer.writerow([csv_cell(row.label), *(csv_cell(value) for value in row.values)])
    return buffer.getvalue()
