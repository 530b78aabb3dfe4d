"""A pruning criterion's per-unit distribution for one layer in one cycle, with its thresholds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from backend.figures.common import (
    FOLDED_COLOUR,
    KEPT_COLOUR,
    REMOVED_COLOUR,
    Figure,
    axis,
    empty_figure,
    escape,
    figure,
    fmt,
    label,
    layout,
    number,
    vertical_line,
)
from backend.figures.inputs import UnitStats

#: Each criterion's measure: (UnitStats attribute, axis title with unit, hover name).
MEASURES: dict[str, tuple[str, str, str]] = {
    "apoz": ("apoz", "APoZ (fraction of outputs that are zero)", "APoZ"),
    "active": ("active", "activation count (outputs above 0)", "active"),
    "variance": ("variance", "output variance (activation units²)", "variance"),
}
#: Criterion type → (measure, parameter name, the spec's default parameter).
CRITERIA: dict[str, tuple[str, str | None, float | None]] = {
    "apoz": ("apoz", "k", 1.0),
    "count_band": ("active", "k", 2.0),
    "activation_count": ("active", "threshold", 0.0),
    "variance": ("variance", "threshold", 1e-6),
    "variance_band": ("variance", "k", 2.0),
    "none": ("apoz", None, None),
}


@dataclass(frozen=True)
class Threshold:
    """One threshold of a criterion, where the figure draws its vertical line.

    Attributes:
        value: the threshold on the criterion's measure.
        text: how it was computed, e.g. "mean + 1·std = 0.6312".
    """

    value: float
    text: str


def _criterion(criterion: Mapping[str, Any] | str) -> tuple[str, dict[str, Any]]:
    """The criterion's type and parameters (ValueError for an unknown type)."""
    spec = {"type": criterion} if isinstance(criterion, str) else dict(criterion)
    kind = str(spec.get("type", "apoz"))
    if kind not in CRITERIA:
        raise ValueError(f"unknown criterion '{kind}'; known: {sorted(CRITERIA)}")
    return kind, spec


def criterion_measure(criterion: Mapping[str, Any] | str) -> str:
    """The measure a criterion reads: "apoz", "active" or "variance".

    Args:
        criterion: the spec's criterion or just its type.

    Returns:
        the measure's name (a key of :data:`MEASURES`).

    Raises:
        ValueError: an unknown criterion type.
    """
    return CRITERIA[_criterion(criterion)[0]][0]


def criterion_thresholds(
    criterion: Mapping[str, Any] | str, values: Sequence[float | None]
) -> tuple[str, list[Threshold]]:
    """The measure a criterion reads and its threshold(s) on a layer's values, as the engine computes them.

    Standard deviations and variances are the population ones (ddof 0) over the layer's units, as in
    ``worker.engine.criteria``: APoZ removes above mean + k·std; count band removes outside
    mean ± k·std; variance band removes inside mean ± k·var; activation count and variance remove at
    or below their fixed threshold; "none" shows APoZ without a threshold.

    Args:
        criterion: the spec's criterion (``{"type": "apoz", "k": 1.5}``) or just its type; missing
            parameters take the spec's defaults.
        values: the layer's per-unit values of the criterion's measure (None = not finite, skipped).

    Returns:
        the measure ("apoz", "active" or "variance") and its thresholds (none without finite values).

    Raises:
        ValueError: an unknown criterion type.
    """
    kind, spec = _criterion(criterion)
    measure, parameter, default = CRITERIA[kind]
    finite = np.array([value for value in (number(v) for v in values) if value is not None], dtype=float)
    if parameter is None:
        return measure, []
    amount = float(spec.get(parameter, default) or 0.0)
    if kind in ("activation_count", "variance"):
        return measure, [Threshold(amount, f"threshold = {fmt(amount)}")]
    if finite.size == 0:
        return measure, []
    centre = float(finite.mean())
    if kind == "apoz":
        value = centre + amount * float(finite.std())
        return measure, [Threshold(value, f"mean + {fmt(amount)}·std = {fmt(value, 4)}")]
    spread, word = (float(finite.std()), "std") if kind == "count_band" else (float(finite.var()), "var")
    low, high = centre - amount * spread, centre + amount * spread
    return measure, [
        Threshold(low, f"mean − {fmt(amount)}·{word} = {fmt(low, 4)}"),
        Threshold(high, f"mean + {fmt(amount)}·{word} = {fmt(high, 4)}"),
    ]


def criterion_title(stats: UnitStats) -> str:
    """The criterion figure's title (layer name escaped)."""
    return f"Pruning criterion · layer {escape(stats.layer)} · cycle {stats.cycle}"


def criterion_figure(
    stats: UnitStats,
    criterion: Mapping[str, Any] | str,
    removed: Sequence[int],
    *,
    folded: Sequence[int] = (),
    bins: int = 30,
    uirevision: str | int = "criterion",
) -> Figure:
    """The distribution of a criterion's measure over one layer's units, with thresholds and removed units.

    Top: a histogram of the units' values, stacked by fate (kept, removed by the criterion, folded as
    constants). Bottom: every unit as a point (x = value, y = unit index) in its fate's colour. Each
    threshold is a dashed vertical line across both, labelled with how it was computed.

    Args:
        stats: the layer's per-unit statistics in the cycle.
        criterion: the spec's criterion or its type (see :func:`criterion_thresholds`).
        removed: indices of the units the cycle removed from this layer (folded ones included).
        folded: indices of removed units that were constant and folded into the next bias. Default none.
        bins: histogram bins. Default 30.
        uirevision: kept across live updates. Default "criterion".

    Returns:
        three bar traces and three scatter traces (kept, removed, folded; empty ones left out).

    Raises:
        ValueError: an unknown criterion type.
    """
    title = criterion_title(stats)
    attribute, axis_title, short = MEASURES[criterion_measure(criterion)]
    values = [number(value) for value in getattr(stats, attribute)]
    _, thresholds = criterion_thresholds(criterion, values)
    units = [(unit, value) for unit, value in enumerate(values) if value is not None]
    if not units:
        return empty_figure(title, uirevision, "No unit statistics for this layer and cycle")
    folded_set = set(folded)
    removed_set = set(removed) - folded_set
    fates = (
        ("kept", KEPT_COLOUR, [u for u in units if u[0] not in removed_set and u[0] not in folded_set]),
        ("removed", REMOVED_COLOUR, [u for u in units if u[0] in removed_set]),
        ("folded (constant)", FOLDED_COLOUR, [u for u in units if u[0] in folded_set]),
    )
    all_values = np.array([value for _, value in units], dtype=float)
    low, high = float(all_values.min()), float(all_values.max())
    if low == high:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, max(1, bins) + 1)
    centres = ((edges[:-1] + edges[1:]) / 2).tolist()
    width = float(edges[1] - edges[0])
    half = width / 2
    traces: list[dict[str, Any]] = []
    for fate, fate_colour, members in fates:
        if not members:
            continue
        counts, _ = np.histogram([value for _, value in members], bins=edges)
        name = f"{fate} ({len(members)})"
        traces.append(
            {
                "type": "bar",
                "name": name,
                "legendgroup": fate,
                "x": centres,
                "y": counts.tolist(),
                "width": width,
                "marker": {"color": fate_colour},
                "hovertemplate": f"{short} %{{x:.4g}} ± {half:.3g}<br>%{{y}} units {fate}<extra></extra>",
            }
        )
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": name,
                "legendgroup": fate,
                "showlegend": False,
                "x": [value for _, value in members],
                "y": [unit for unit, _ in members],
                "yaxis": "y2",
                "marker": {"color": fate_colour, "size": 6},
                "hovertext": [f"unit {unit}<br>{short} {fmt(value)}<br>{fate}" for unit, value in members],
                "hoverinfo": "text",
            }
        )
    shapes = [vertical_line(threshold.value) for threshold in thresholds]
    annotations = [
        label(threshold.value, threshold.text, y=1.0 if position % 2 == 0 else 0.93)
        for position, threshold in enumerate(thresholds)
    ]
    return figure(
        traces,
        layout(
            title,
            uirevision,
            xaxis=axis(axis_title, anchor="y2"),
            yaxis=axis("units per bin", domain=[0.42, 1.0], rangemode="tozero"),
            yaxis2=axis("unit index", domain=[0.0, 0.34], anchor="x", rangemode="tozero"),
            barmode="stack",
            bargap=0.02,
            shapes=shapes,
            annotations=annotations,
        ),
    )
