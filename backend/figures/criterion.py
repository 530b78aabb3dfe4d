"""A pruning criterion's per-unit distribution for one layer in one cycle, with its thresholds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pydantic

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
from prunespec.criteria import CRITERIA as CRITERION_CLASSES
from prunespec.criteria import CriterionBase, Threshold

__all__ = ["CRITERIA", "Threshold", "criterion_figure", "criterion_measure", "criterion_thresholds"]

#: Criterion class by type (the one definition, from the spec package).
CRITERIA = CRITERION_CLASSES


def _criterion(criterion: Mapping[str, Any] | str) -> CriterionBase:
    """The criterion's definition with its parameters (defaults filled in; ValueError for an unknown type).

    Parameters a stored spec holds outside today's bounds are kept as written, so an old experiment's
    figure still draws the threshold it ran with.
    """
    written = {"type": criterion} if isinstance(criterion, str) else dict(criterion)
    kind = str(written.get("type", "apoz"))
    if kind not in CRITERIA:
        raise ValueError(f"unknown criterion '{kind}'; known: {sorted(CRITERIA)}")
    cls = CRITERIA[kind]
    try:
        return cls.model_validate({**written, "type": kind})
    except pydantic.ValidationError:
        fields = {key: value for key, value in written.items() if key in cls.model_fields}
        return cls.model_construct(**{**cls().model_dump(), **fields})


def criterion_measure(criterion: Mapping[str, Any] | str) -> str:
    """The measure a criterion reads: "apoz", "active", "variance", "bn_scale" or "weight_norm".

    Args:
        criterion: the spec's criterion or just its type.

    Returns:
        the measure's name (``prunespec.criteria.CriterionBase.measure``).

    Raises:
        ValueError: an unknown criterion type.
    """
    return _criterion(criterion).measure


def criterion_thresholds(
    criterion: Mapping[str, Any] | str, values: Sequence[float | None]
) -> tuple[str, list[Threshold]]:
    """The measure a criterion reads and its threshold(s) on a layer's values, as the engine's rule has them.

    The rule and its thresholds are the criterion's one definition (``prunespec.criteria``); "none"
    shows APoZ without a threshold.

    Args:
        criterion: the spec's criterion (``{"type": "apoz", "k": 1.5}``) or just its type; missing
            parameters take the spec's defaults.
        values: the layer's per-unit values of the criterion's measure (None = not finite, skipped).

    Returns:
        the measure and its thresholds (none without finite values).

    Raises:
        ValueError: an unknown criterion type.
    """
    definition = _criterion(criterion)
    finite = np.array([value for value in (number(v) for v in values) if value is not None], dtype=float)
    return definition.measure, definition.thresholds(finite)


def criterion_title(stats: UnitStats) -> str:
    """The criterion figure's title (layer name escaped)."""
    return f"Pruning criterion · layer {escape(stats.layer)} · cycle {stats.cycle}"


def criterion_figure(
    stats: UnitStats,
    criterion: Mapping[str, Any] | str,
    removed: Sequence[int],
    *,
    folded: Sequence[int] = (),
    scores: Sequence[float | None] | None = None,
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
        scores: the per-unit weight measure of a weight criterion (bn_scale, weight_norm), when recorded.
            Default None: such a criterion shows APoZ without a threshold.
        bins: histogram bins. Default 30.
        uirevision: kept across live updates. Default "criterion".

    Returns:
        three bar traces and three scatter traces (kept, removed, folded; empty ones left out).

    Raises:
        ValueError: an unknown criterion type.
    """
    title = criterion_title(stats)
    definition = _criterion(criterion)
    axis_title, short = definition.measure_title, definition.measure_short
    if definition.source == "weights" and scores is not None:
        values = [number(value) for value in scores]
        thresholds = definition.thresholds([v for v in values if v is not None]) if values else []
    elif definition.source == "weights":  # weight scores were not recorded: show APoZ, no threshold
        fallback = _criterion("none")
        axis_title, short = (
            fallback.measure_title + f" · {definition.measure} not recorded",
            fallback.measure_short,
        )
        values = [number(value) for value in stats.apoz]
        thresholds = []
    else:
        values = [number(value) for value in getattr(stats, definition.measure)]
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
