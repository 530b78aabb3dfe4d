"""Figures of one experiment over its cycles: units kept per layer, parameters and FLOPs, metric vs FLOPs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from backend.figures.common import (
    PALETTE,
    CycleMarks,
    Figure,
    axis,
    colour,
    empty_figure,
    escape,
    figure,
    fmt,
    layout,
    number,
    spans_decades,
)
from backend.figures.inputs import CycleRow, cycle_order
from backend.figures.training import metric_title
from prunespec.metrics import higher_is_better

WIDTHS_TITLE = "Units kept per layer"
COSTS_TITLE = "Parameters and FLOPs per cycle"


def layer_names(cycles: Sequence[CycleRow]) -> list[str]:
    """Every layer named in the cycles' widths, in model order of first appearance.

    Args:
        cycles: cycles in index order.

    Returns:
        layer names without duplicates.
    """
    names: dict[str, None] = {}
    for cycle in cycles:
        names.update(dict.fromkeys(cycle.widths))
        names.update(dict.fromkeys(cycle.widths_after))
    return list(names)


def prunable_names(cycles: Sequence[CycleRow]) -> list[str]:
    """The layers pruning can shrink, from the widths alone: every weighted layer but the last, the output
    (as ``ModelSpec.prunable_indices`` says; the recorder writes widths in model order).

    For figures whose caller has no spec at hand (the compare view); one experiment's page passes the
    spec's own list instead.

    Args:
        cycles: cycles in index order.

    Returns:
        layer names in model order, without the output layer.
    """
    return layer_names(cycles)[:-1]


def widths_figure(
    cycles: Sequence[CycleRow],
    *,
    stacked: bool = False,
    stage: Literal["after", "before"] = "after",
    layers: Sequence[str] | None = None,
    marks: CycleMarks | None = None,
    uirevision: str | int = "widths",
) -> Figure:
    """Units (dense) or channels (conv) kept per layer at every cycle, as bars.

    Args:
        cycles: the experiment's cycles, any order.
        stacked: stack the layers' bars (total units per cycle) instead of grouping them. Default False.
        stage: "after": the widths the cycle's pruning kept (``widths_after``); "before": the widths of
            the model the cycle trained (``widths``). Default "after".
        layers: the layers to draw, in this order; default every weighted layer in model order. The
            service passes the prunable layers only (the output layer cannot shrink).
        marks: the final and rejected cycles; default from the cycles (the newest accepted is final).
        uirevision: kept across live updates. Default "widths".

    Returns:
        one bar trace per layer with x = cycle index and y = width (None where the layer is absent);
        the final cycle's bars have a dark outline, rejected cycles' bars are hatched with a red
        outline, and the x ticks name both; the hover shows the width before and after and the units
        removed.
    """
    ordered = cycle_order(cycles)
    marks = marks or CycleMarks.of(ordered)
    known = layer_names(ordered)
    names = [name for name in layers if name in known] if layers is not None else known
    if not ordered or not names:
        return empty_figure(WIDTHS_TITLE, uirevision)
    traces: list[dict[str, Any]] = []
    for position, name in enumerate(names):
        before = [cycle.widths.get(name) for cycle in ordered]
        after = [cycle.widths_after.get(name, cycle.widths.get(name)) for cycle in ordered]
        heights = after if stage == "after" else before
        hover = [
            f"{marks.label(cycle.index)}<br>"
            f"width {fmt(width_before)} → {fmt(width_after)}"
            f" (removed {fmt(_difference(width_before, width_after))})"
            for cycle, width_before, width_after in zip(ordered, before, after, strict=True)
        ]
        traces.append(
            {
                "type": "bar",
                "name": escape(name),
                "x": [cycle.index for cycle in ordered],
                "y": heights,
                "marker": marks.bar_marker([cycle.index for cycle in ordered], colour(position)),
                "hovertext": hover,
                "hoverinfo": "text+name",
            }
        )
    y_title = "units kept after pruning" if stage == "after" else "units trained"
    return figure(
        traces,
        layout(
            WIDTHS_TITLE,
            uirevision,
            xaxis=marks.cycle_axis([cycle.index for cycle in ordered]),
            yaxis=axis(f"{y_title} (units / channels)", rangemode="tozero"),
            barmode="stack" if stacked else "group",
        ),
    )


def _difference(before: int | None, after: int | None) -> int | None:
    return None if before is None or after is None else before - after


def costs_figure(
    cycles: Sequence[CycleRow],
    *,
    normalise: bool = False,
    marks: CycleMarks | None = None,
    uirevision: str | int = "costs",
) -> Figure:
    """Parameters and FLOPs of the model each cycle trained.

    Args:
        cycles: the experiment's cycles, any order.
        normalise: draw both as a percentage of the first cycle on one axis instead of absolute numbers
            on two y axes (parameters left, FLOPs right). Default False.
        marks: the final and rejected cycles; default from the cycles (the newest accepted is final).
        uirevision: kept across live updates. Default "costs".

    Returns:
        two line traces, "parameters" and "FLOPs", with x = cycle index, the final cycle a star and
        rejected cycles an x (the x ticks name both); the hover always shows the absolute numbers and
        the percentage of the first cycle.
    """
    ordered = cycle_order(cycles)
    marks = marks or CycleMarks.of(ordered)
    if not ordered:
        return empty_figure(COSTS_TITLE, uirevision)
    x = [cycle.index for cycle in ordered]
    series = {
        "parameters": [cycle.params for cycle in ordered],
        "FLOPs": [cycle.flops for cycle in ordered],
    }
    traces: list[dict[str, Any]] = []
    for position, (name, values) in enumerate(series.items()):
        base = values[0]
        percent = [100.0 * value / base if base else None for value in values]
        hover = [
            f"{marks.label(index)}<br>{name} {fmt(value)} ({fmt(share, 4)} % of cycle {x[0]})"
            for index, value, share in zip(x, values, percent, strict=True)
        ]
        trace: dict[str, Any] = {
            "type": "scatter",
            "mode": "lines+markers",
            "name": name,
            "x": x,
            "y": percent if normalise else values,
            "line": {"color": PALETTE[position], "dash": "solid" if position == 0 else "dash"},
            "marker": marks.line_marker(x, PALETTE[position]),
            "connectgaps": False,
            "hovertext": hover,
            "hoverinfo": "text",
        }
        if position == 1 and not normalise:
            trace["yaxis"] = "y2"
        traces.append(trace)
    extra: dict[str, Any] = {}
    if normalise:
        yaxis = axis(f"% of cycle {x[0]}", rangemode="tozero")
    else:
        yaxis = axis("parameters", rangemode="tozero", tickformat="~s", color=PALETTE[0])
        extra["yaxis2"] = axis(
            "FLOPs per example",
            overlaying="y",
            side="right",
            rangemode="tozero",
            tickformat="~s",
            showgrid=False,
            color=PALETTE[1],
        )
    return figure(
        traces,
        layout(COSTS_TITLE, uirevision, xaxis=marks.cycle_axis(x), yaxis=yaxis, **extra),
    )


METRIC_FLOPS_TITLE = "Validation metric vs FLOPs"


def metric_flops_figure(
    cycles: Sequence[CycleRow],
    metric_name: str | None,
    *,
    marks: CycleMarks | None = None,
    uirevision: str | int = "metric-flops",
) -> Figure:
    """Each cycle's validation metric against the FLOPs of the model it trained, in cycle order.

    Args:
        cycles: the experiment's cycles, any order.
        metric_name: "accuracy" or "rmse" (the y axis title).
        marks: the final and rejected cycles; default from the cycles (the newest accepted is final).
        uirevision: kept across live updates. Default "metric-flops".

    Returns:
        one line trace through the cycles (x = FLOPs per example, y = validation metric, the training
        metric where validation is missing; None leaves a gap), the final cycle a star and rejected
        cycles an x. The FLOPs axis (and an RMSE axis) is logarithmic when it spans more than
        :data:`LOG_DECADES` decades.
    """
    ordered = cycle_order(cycles)
    marks = marks or CycleMarks.of(ordered)
    values = [number(cycle.val_metric) for cycle in ordered]
    values = [
        number(cycle.metric) if value is None else value for cycle, value in zip(ordered, values, strict=True)
    ]
    if not ordered or all(value is None for value in values):
        return empty_figure(METRIC_FLOPS_TITLE, uirevision)
    flops = [cycle.flops for cycle in ordered]
    indices = [cycle.index for cycle in ordered]
    trace = {
        "type": "scatter",
        "mode": "lines+markers",
        "name": "cycles",
        "x": flops,
        "y": values,
        "connectgaps": False,
        "line": {"color": PALETTE[0], "width": 1.5},
        "marker": marks.line_marker(indices, PALETTE[0]),
        "hovertext": [
            f"{marks.label(index)}<br>{escape(metric_name or 'metric')} {fmt(value)}<br>FLOPs {fmt(cost)}"
            for index, value, cost in zip(indices, values, flops, strict=True)
        ],
        "hoverinfo": "text",
    }
    log_metric = not higher_is_better(metric_name) and spans_decades(values)
    return figure(
        [trace],
        layout(
            METRIC_FLOPS_TITLE,
            uirevision,
            xaxis=axis(
                "FLOPs per example", type="log" if spans_decades(flops) else "linear", tickformat="~s"
            ),
            yaxis=axis(f"validation {metric_title(metric_name)}", type="log" if log_metric else "linear"),
            showlegend=False,
        ),
    )
