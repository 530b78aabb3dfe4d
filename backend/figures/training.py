"""Loss and metric per epoch across every cycle of one experiment, on one global epoch axis."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from backend.figures.common import (
    BOUNDARY_COLOUR,
    PALETTE,
    CycleMarks,
    Figure,
    axis,
    empty_figure,
    escape,
    figure,
    fmt,
    label,
    layout,
    numbers,
    spans_decades,
    vertical_line,
)
from backend.figures.inputs import EpochPoint

TRAINING_TITLE = "Loss and metric per epoch"

#: (attribute, legend name, colour, dash, y axis) of the four curves.
_CURVES: tuple[tuple[str, str, str, str, str], ...] = (
    ("loss", "train loss", PALETTE[0], "solid", "y"),
    ("val_loss", "validation loss", PALETTE[1], "dash", "y"),
    ("metric", "train {metric}", PALETTE[0], "solid", "y2"),
    ("val_metric", "validation {metric}", PALETTE[1], "dash", "y2"),
)


@dataclass(frozen=True)
class EpochAxis:
    """Epochs placed on one global axis.

    Attributes:
        epochs: the epochs sorted by (cycle, epoch).
        x: the global epoch index of each, 1, 2, 3, ... across cycles.
        starts: for each cycle, in order, (cycle, global index of its first epoch).
    """

    epochs: list[EpochPoint]
    x: list[int]
    starts: list[tuple[int, int]]

    @property
    def boundaries(self) -> list[float]:
        """x of the line between one cycle's last epoch and the next cycle's first (``start − 0.5``)."""
        return [start - 0.5 for _, start in self.starts[1:]]


def epoch_axis(epochs: Sequence[EpochPoint]) -> EpochAxis:
    """Number every epoch of every cycle on one axis, in training order.

    Args:
        epochs: epochs of any cycles, any order; a (cycle, epoch) pair should appear once.

    Returns:
        the sorted epochs, their global indices from 1 and where each cycle starts.
    """
    ordered = sorted(epochs, key=lambda point: (point.cycle, point.epoch))
    x = list(range(1, len(ordered) + 1))
    starts: list[tuple[int, int]] = []
    for point, index in zip(ordered, x, strict=True):
        if not starts or starts[-1][0] != point.cycle:
            starts.append((point.cycle, index))
    return EpochAxis(ordered, x, starts)


def metric_title(metric_name: str | None) -> str:
    """The metric's axis title with its unit.

    Args:
        metric_name: "accuracy", "rmse" or another name (escaped).

    Returns:
        e.g. "accuracy (fraction)" or "RMSE (target units)".
    """
    if metric_name == "accuracy":
        return "accuracy (fraction correct)"
    if metric_name == "rmse":
        return "RMSE (target units)"
    return escape(metric_name or "metric")


def training_figure(
    epochs: Sequence[EpochPoint],
    metric_name: str | None,
    *,
    log_loss: bool | None = None,
    marks: CycleMarks | None = None,
    uirevision: str | int = "training",
) -> Figure:
    """Train and validation loss (top) and metric (bottom) per epoch, cycles one after another.

    The x axis is the global epoch index (1 = the first epoch of the first cycle); a dotted vertical
    line separates consecutive cycles at ``first index − 0.5`` and a label "cycle k" marks where
    each cycle starts ("cycle k · final (kept)", "cycle k · rejected" for the marked cycles).

    Args:
        epochs: the experiment's epochs so far (any order; live updates simply pass more).
        metric_name: "accuracy" or "rmse" (None: "metric").
        log_loss: draw the loss (and an RMSE metric) on a log axis; None (default): log when the
            values span more than :data:`LOG_DECADES` decades. Accuracy always stays linear.
        marks: the final and rejected cycles. Default: none marked.
        uirevision: kept across live updates. Default "training".

    Returns:
        four line traces (train/validation × loss/metric) on two stacked y axes sharing x; the hover
        shows the cycle, the epoch within it and the exact value.
    """
    placed = epoch_axis(epochs)
    if not placed.epochs:
        return empty_figure(TRAINING_TITLE, uirevision)
    metric = escape(metric_name or "metric")
    marks = marks or CycleMarks()
    series = {
        attribute: numbers(getattr(point, attribute) for point in placed.epochs) for attribute, *_ in _CURVES
    }
    losses = [*series["loss"], *series["val_loss"]]
    metrics = [*series["metric"], *series["val_metric"]]
    log_axis = spans_decades(losses) if log_loss is None else log_loss
    log_metric = metric_name == "rmse" and (spans_decades(metrics) if log_loss is None else log_loss)
    traces: list[dict[str, Any]] = []
    for attribute, name, line_colour, dash, yaxis in _CURVES:
        values = series[attribute]
        if all(value is None for value in values):
            continue
        legend = name.format(metric=metric)
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": legend,
                "x": placed.x,
                "y": values,
                "yaxis": yaxis,
                "line": {"color": line_colour, "dash": dash, "width": 2},
                "marker": {"size": 4},
                "connectgaps": False,
                "hovertext": [
                    f"cycle {point.cycle} · epoch {point.epoch} (global {index})<br>{legend} {fmt(value)}"
                    for point, index, value in zip(placed.epochs, placed.x, values, strict=True)
                ],
                "hoverinfo": "text",
            }
        )
    shapes = [vertical_line(x, colour_=BOUNDARY_COLOUR, dash="dot") for x in placed.boundaries]
    annotations = [label(start - 0.5, marks.label(cycle)) for cycle, start in placed.starts]
    return figure(
        traces,
        layout(
            TRAINING_TITLE,
            uirevision,
            xaxis=axis("epoch (global, across cycles)", anchor="y2", rangemode="tozero"),
            yaxis=axis("loss", domain=[0.55, 1.0], type="log" if log_axis else "linear"),
            yaxis2=axis(
                metric_title(metric_name),
                domain=[0.0, 0.45],
                anchor="x",
                type="log" if log_metric else "linear",
            ),
            shapes=shapes,
            annotations=annotations,
        ),
    )
