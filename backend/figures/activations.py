"""One layer's histogram of activation values over cycles, as a heatmap."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from backend.figures.common import CycleMarks, Figure, axis, empty_figure, escape, figure, fmt, layout, number
from backend.figures.inputs import LayerHistogram


def heatmap_title(layer: str) -> str:
    """The heatmap's title for a layer (escaped)."""
    return f"Activation histogram per cycle · layer {escape(layer)}"


def activation_heatmap_figure(
    layer: str,
    histograms: Sequence[LayerHistogram],
    *,
    log_colour: bool = True,
    marks: CycleMarks | None = None,
    uirevision: str | int = "activations",
) -> Figure:
    """One layer's histogram of activation values at every cycle, as a heatmap.

    Every cycle is its own heatmap row (x = the centres of that cycle's bins, y = the cycle, z = its
    counts), all sharing one colour axis, so cycles whose bin edges differ are drawn exactly, without
    re-binning.

    Args:
        layer: the layer's name (user text; escaped).
        histograms: the layer's histogram per cycle, any order.
        log_colour: colour by ``log10(1 + count)`` instead of the count; the hover shows the count either
            way. Default True (a few bins, often the zeros, hold most values).
        marks: the final and rejected cycles, named on the y ticks and in the hover. Default: none.
        uirevision: kept across live updates. Default "activations".

    Returns:
        one heatmap trace per cycle, in cycle order.
    """
    title = heatmap_title(layer)
    rows = sorted(
        (row for row in histograms if len(row.histogram) and len(row.bin_edges) == len(row.histogram) + 1),
        key=lambda row: row.cycle,
    )
    if not rows:
        return empty_figure(title, uirevision)
    marks = marks or CycleMarks()
    traces: list[dict[str, Any]] = []
    for row in rows:
        edges = [float(edge) for edge in row.bin_edges]
        counts = [number(count) or 0.0 for count in row.histogram]
        centres = [(low + high) / 2 for low, high in zip(edges[:-1], edges[1:], strict=True)]
        colour_values = [math.log10(1.0 + count) for count in counts] if log_colour else counts
        traces.append(
            {
                "type": "heatmap",
                "name": f"cycle {row.cycle}",
                "x": centres,
                "y": [row.cycle],
                "z": [colour_values],
                "coloraxis": "coloraxis",
                "hovertext": [
                    [
                        f"{marks.label(row.cycle)}<br>value {fmt(low, 4)} to {fmt(high, 4)}"
                        f"<br>count {fmt(count)}"
                        for low, high, count in zip(edges[:-1], edges[1:], counts, strict=True)
                    ]
                ],
                "hoverinfo": "text",
            }
        )
    return figure(
        traces,
        layout(
            title,
            uirevision,
            xaxis=axis("activation value (bin centre)"),
            yaxis=marks.cycle_axis([row.cycle for row in rows]),
            coloraxis={
                "colorscale": "Viridis",
                "cmin": 0,
                "colorbar": {"title": {"text": "log₁₀(1 + count)" if log_colour else "count (values)"}},
            },
        ),
    )
