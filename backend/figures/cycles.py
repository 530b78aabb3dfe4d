"""Figures of one experiment over its cycles: units kept per layer, parameters and FLOPs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from backend.figures.common import (
    PALETTE,
    Figure,
    axis,
    colour,
    empty_figure,
    escape,
    figure,
    fmt,
    layout,
)
from backend.figures.inputs import CycleRow, cycle_order

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


def widths_figure(
    cycles: Sequence[CycleRow],
    *,
    stacked: bool = False,
    stage: Literal["after", "before"] = "after",
    layers: Sequence[str] | None = None,
    uirevision: str | int = "widths",
) -> Figure:
    """Units (dense) or channels (conv) kept per layer at every cycle, as bars.

    Args:
        cycles: the experiment's cycles, any order.
        stacked: stack the layers' bars (total units per cycle) instead of grouping them. Default False.
        stage: "after": the widths the cycle's pruning kept (``widths_after``); "before": the widths of
            the model the cycle trained (``widths``). Default "after".
        layers: the layers to draw, in this order; default every weighted layer in model order.
        uirevision: kept across live updates. Default "widths".

    Returns:
        one bar trace per layer with x = cycle index and y = width (None where the layer is absent);
        the hover shows the width before and after and the units removed.
    """
    ordered = cycle_order(cycles)
    names = list(layers) if layers is not None else layer_names(ordered)
    if not ordered or not names:
        return empty_figure(WIDTHS_TITLE, uirevision)
    traces: list[dict[str, Any]] = []
    for position, name in enumerate(names):
        before = [cycle.widths.get(name) for cycle in ordered]
        after = [cycle.widths_after.get(name, cycle.widths.get(name)) for cycle in ordered]
        heights = after if stage == "after" else before
        hover = [
            f"cycle {cycle.index}{'' if cycle.accepted else ' (rejected)'}<br>"
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
                "marker": {"color": colour(position)},
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
            xaxis=axis("cycle", dtick=1),
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
    uirevision: str | int = "costs",
) -> Figure:
    """Parameters and FLOPs of the model each cycle trained.

    Args:
        cycles: the experiment's cycles, any order.
        normalise: draw both as a percentage of the first cycle on one axis instead of absolute numbers
            on two y axes (parameters left, FLOPs right). Default False.
        uirevision: kept across live updates. Default "costs".

    Returns:
        two line traces, "parameters" and "FLOPs", with x = cycle index; the hover always shows the
        absolute numbers and the percentage of the first cycle.
    """
    ordered = cycle_order(cycles)
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
            f"cycle {index}<br>{name} {fmt(value)} ({fmt(share, 4)} % of cycle {x[0]})"
            for index, value, share in zip(x, values, percent, strict=True)
        ]
        trace: dict[str, Any] = {
            "type": "scatter",
            "mode": "lines+markers",
            "name": name,
            "x": x,
            "y": percent if normalise else values,
            "line": {"color": PALETTE[position], "dash": "solid" if position == 0 else "dash"},
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
        layout(COSTS_TITLE, uirevision, xaxis=axis("cycle", dtick=1), yaxis=yaxis, **extra),
    )
