"""The shared look of every figure, the one escaping helper for user text, and number helpers.

Figures are plain dicts in Plotly's figure schema (``{"data": [...], "layout": {...}}``) built from
Python ints, floats, strings, lists and dicts only, so ``json.dumps(figure, allow_nan=False)`` always
succeeds: numbers that are missing or not finite become ``None`` (a gap in the plot).

Plotly renders a small HTML subset (``<b>``, ``<br>``, ``<a href>``, ...) in titles, legends, hover
labels, tick labels and annotations. Every string a user typed (experiment names, layer names, tags)
therefore passes through :func:`escape` before it enters a figure, and never enters a
``hovertemplate`` (where ``%{...}`` would be substituted): user text goes into trace names,
``hovertext`` or ``text``, already escaped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any, Literal

#: A Plotly figure as a JSON-ready dict.
Figure = dict[str, Any]

#: Ten distinguishable colours (Tableau 10), in trace order.
PALETTE: tuple[str, ...] = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
#: Units that stay, units that go, units folded as constants.
KEPT_COLOUR = "#4e79a7"
REMOVED_COLOUR = "#e15759"
FOLDED_COLOUR = "#edc948"
#: Thresholds, cycle boundaries and reference lines.
THRESHOLD_COLOUR = "#222222"
BOUNDARY_COLOUR = "#9a9a9a"
REFERENCE_COLOUR = "#7f7f7f"
#: Line styles for a second dimension (layers within an experiment, train vs validation).
DASHES: tuple[str, ...] = ("solid", "dot", "dash", "longdash", "dashdot", "longdashdot")
#: Marker symbols for experiments beyond the palette's ten colours.
SYMBOLS: tuple[str, ...] = ("circle", "square", "diamond", "triangle-up")

FONT: dict[str, Any] = {
    "family": "Inter, system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif",
    "size": 13,
    "color": "#222222",
}
GRID_COLOUR = "#e6e6e6"
AXIS_COLOUR = "#9a9a9a"

#: Shown by every figure that has nothing to draw yet.
NO_DATA = "No data yet"


def escape(text: object) -> str:
    """User text as literal text for Plotly: ``&``, ``<`` and ``>`` become HTML entities.

    plotly.js decodes the entities when it draws, so ``<b>`` shows as the four characters ``<b>``
    instead of turning bold, and ``<img ...>`` or ``<a href=...>`` can never become markup.

    Args:
        text: a name, tag, note or any other value a user may have typed (``str()`` is applied).

    Returns:
        the text with ``&`` → ``&amp;``, ``<`` → ``&lt;``, ``>`` → ``&gt;`` (``&`` first).
    """
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def number(value: object) -> float | None:
    """A finite float, or None for a missing, non-numeric or non-finite value.

    Args:
        value: anything (None, int, float, NumPy scalar, ...).

    Returns:
        ``float(value)`` when it is finite, else None.
    """
    if isinstance(value, bool) or not isinstance(value, Real):
        return None
    result = float(value)
    return result if math.isfinite(result) else None


def numbers(values: Iterable[object]) -> list[float | None]:
    """:func:`number` applied to every value.

    Args:
        values: numbers, possibly missing or not finite.

    Returns:
        one finite float or None per value.
    """
    return [number(value) for value in values]


def fmt(value: object, digits: int = 6) -> str:
    """A number for hover text: integers with thousands separators, floats to ``digits`` significant digits.

    Args:
        value: the number (None or not finite shows as "–").
        digits: significant digits of a float. Default 6.

    Returns:
        the formatted number.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    finite = number(value)
    if finite is None:
        return "–"
    if finite.is_integer() and abs(finite) < 1e15:
        return f"{int(finite):,}"
    return f"{finite:.{digits}g}"


def colour(index: int) -> str:
    """The palette colour of the ``index``-th trace (cycling).

    Args:
        index: trace position, from 0.

    Returns:
        a hex colour.
    """
    return PALETTE[index % len(PALETTE)]


def axis(title: str, **extra: Any) -> dict[str, Any]:
    """An axis in the house style.

    Args:
        title: the axis title, with its unit (our own text, not a user's).
        **extra: further axis properties (``type``, ``domain``, ``anchor``, ...).

    Returns:
        the axis dict.
    """
    return {
        "title": {"text": title},
        "gridcolor": GRID_COLOUR,
        "linecolor": AXIS_COLOUR,
        "zeroline": False,
        "automargin": True,
        **extra,
    }


def layout(
    title: str,
    uirevision: str | int,
    *,
    xaxis: dict[str, Any] | None = None,
    yaxis: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A layout in the house style.

    Args:
        title: the figure title; user parts must already be escaped.
        uirevision: kept equal across live updates so that zoom, pan and legend clicks survive.
        xaxis, yaxis: axis dicts (see :func:`axis`).
        **extra: further layout properties (``yaxis2``, ``shapes``, ``annotations``, ``barmode``, ...).

    Returns:
        the layout dict.
    """
    result: dict[str, Any] = {
        "title": {"text": title, "x": 0.01, "xanchor": "left"},
        "font": FONT,
        "colorway": list(PALETTE),
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "margin": {"l": 70, "r": 30, "t": 60, "b": 60},
        "hovermode": "closest",
        "hoverlabel": {"font": {"family": FONT["family"], "size": 12}},
        "legend": {"orientation": "h", "x": 0, "xanchor": "left", "y": -0.18, "yanchor": "top"},
        "uirevision": uirevision,
    }
    if xaxis is not None:
        result["xaxis"] = xaxis
    if yaxis is not None:
        result["yaxis"] = yaxis
    result.update(extra)
    return result


def figure(data: Sequence[dict[str, Any]], figure_layout: dict[str, Any]) -> Figure:
    """A figure dict from its traces and layout.

    Args:
        data: the traces.
        figure_layout: the layout.

    Returns:
        ``{"data": [...], "layout": {...}}``.
    """
    return {"data": list(data), "layout": figure_layout}


def empty_figure(title: str, uirevision: str | int, message: str = NO_DATA) -> Figure:
    """A figure without traces that says why it is empty instead of drawing blank axes.

    Args:
        title: the figure title (as the filled figure would have it).
        uirevision: the filled figure's ``uirevision``.
        message: the text in the middle. Default "No data yet".

    Returns:
        the figure, with hidden axes and one centred annotation.
    """
    hidden = {"visible": False}
    return figure(
        [],
        layout(
            title,
            uirevision,
            xaxis=hidden,
            yaxis=hidden,
            annotations=[
                {
                    "text": escape(message),
                    "xref": "paper",
                    "yref": "paper",
                    "x": 0.5,
                    "y": 0.5,
                    "showarrow": False,
                    "font": {"size": 16, "color": AXIS_COLOUR},
                }
            ],
        ),
    )


def vertical_line(x: float, *, colour_: str = THRESHOLD_COLOUR, dash: str = "dash") -> dict[str, Any]:
    """A vertical line over the whole plot height at data coordinate ``x`` (a layout shape).

    Args:
        x: where, in the x axis's units.
        colour_: line colour. Default near-black.
        dash: line style. Default "dash".

    Returns:
        the shape dict.
    """
    return {
        "type": "line",
        "xref": "x",
        "yref": "paper",
        "x0": x,
        "x1": x,
        "y0": 0,
        "y1": 1,
        "line": {"color": colour_, "width": 1.5, "dash": dash},
        "layer": "above",
    }


def label(x: float, text: str, *, y: float = 1.0, xanchor: str = "left") -> dict[str, Any]:
    """A small annotation at data x, paper y (cycle labels, threshold values).

    Args:
        x: data coordinate on the x axis.
        text: the label; user parts must already be escaped.
        y: paper coordinate. Default 1 (the top of the plot area).
        xanchor: "left", "center" or "right". Default "left".

    Returns:
        the annotation dict.
    """
    return {
        "text": text,
        "xref": "x",
        "yref": "paper",
        "x": x,
        "y": y,
        "xanchor": xanchor,
        "yanchor": "bottom",
        "showarrow": False,
        "font": {"size": 11, "color": "#555555"},
    }


# --------------------------------------------------------------------------------------------- cycle marks

#: How a cycle's model ended: the kept result, rejected beyond the tolerance, or an ordinary accepted cycle.
CycleRole = Literal["final", "rejected", "accepted"]
#: The words every chart and table uses for the two marked roles (the frontend shows the same words).
ROLE_WORDS: dict[CycleRole, str] = {"final": "final (kept)", "rejected": "rejected", "accepted": ""}
#: Point symbol, size and outline of each role on line charts; bar pattern and outline on bar charts.
ROLE_SYMBOLS: dict[CycleRole, str] = {"final": "star", "rejected": "x", "accepted": "circle"}
ROLE_SIZES: dict[CycleRole, int] = {"final": 14, "rejected": 10, "accepted": 7}
ROLE_PATTERNS: dict[CycleRole, str] = {"final": "", "rejected": "/", "accepted": ""}
ROLE_OUTLINES: dict[CycleRole, tuple[str, float]] = {
    "final": (THRESHOLD_COLOUR, 2.0),
    "rejected": (REMOVED_COLOUR, 1.5),
    "accepted": ("#ffffff", 0.5),
}


@dataclass(frozen=True)
class CycleMarks:
    """Which cycle is the kept result and which were rejected: the one source of every chart's marks.

    Attributes:
        final: the cycle whose model is the result (None: none yet).
        rejected: cycles that fell beyond the tolerance.
    """

    final: int | None = None
    rejected: frozenset[int] = frozenset()

    @classmethod
    def of(cls, cycles: Iterable[Any], final_cycle: int | None = None) -> CycleMarks:
        """The marks of cycles carrying ``index`` and ``accepted``.

        Args:
            cycles: the experiment's cycles (any order).
            final_cycle: the experiment's recorded final cycle; default (None) the newest accepted one.

        Returns:
            the marks.
        """
        listed = list(cycles)
        rejected = frozenset(int(cycle.index) for cycle in listed if not cycle.accepted)
        known = {int(cycle.index) for cycle in listed}
        final = final_cycle if final_cycle is not None and final_cycle in known else None
        if final is None:
            accepted = [int(cycle.index) for cycle in listed if cycle.accepted]
            final = max(accepted) if accepted else None
        return cls(final, rejected)

    def role(self, index: int) -> CycleRole:
        """The role of cycle ``index``."""
        if index == self.final:
            return "final"
        return "rejected" if index in self.rejected else "accepted"

    def label(self, index: int) -> str:
        """``"cycle 5 · final (kept)"``, ``"cycle 6 · rejected"`` or ``"cycle 4"`` (hover and titles)."""
        words = ROLE_WORDS[self.role(index)]
        return f"cycle {index} · {words}" if words else f"cycle {index}"

    def words(self) -> dict[str, str]:
        """The marked cycles' words by cycle index as text (JSON keys): ``{"1": "final (kept)", ...}``."""
        marked = sorted({*self.rejected, *([] if self.final is None else [self.final])})
        return {str(index): ROLE_WORDS[self.role(index)] for index in marked}

    def tick(self, index: int) -> str:
        """The x tick text of cycle ``index``: its number, with the role's words on a second line."""
        words = ROLE_WORDS[self.role(index)]
        return f"{index}<br>{words}" if words else str(index)

    def cycle_axis(self, indices: Sequence[int], title: str = "cycle", **extra: Any) -> dict[str, Any]:
        """A cycle x axis whose ticks name the final and rejected cycles.

        Args:
            indices: the cycles on the axis.
            title: the axis title. Default "cycle".
            **extra: further axis properties.

        Returns:
            the axis dict, one tick per cycle.
        """
        ordered = sorted(set(indices))
        return axis(
            title, tickmode="array", tickvals=ordered, ticktext=[self.tick(i) for i in ordered], **extra
        )

    def line_marker(self, indices: Sequence[int], colour_: str, symbol: str = "circle") -> dict[str, Any]:
        """Per-point markers of a line trace over cycles (star: final; x: rejected).

        Args:
            indices: the cycle of each point.
            colour_: the trace's colour.
            symbol: the symbol of the other cycles' points. Default "circle".

        Returns:
            the marker dict.
        """
        roles = [self.role(i) for i in indices]
        return {
            "color": colour_,
            "symbol": [symbol if role == "accepted" else ROLE_SYMBOLS[role] for role in roles],
            "size": [ROLE_SIZES[role] for role in roles],
            "line": {
                "color": [ROLE_OUTLINES[role][0] for role in roles],
                "width": [ROLE_OUTLINES[role][1] for role in roles],
            },
        }

    def bar_marker(self, indices: Sequence[int], colour_: str) -> dict[str, Any]:
        """Per-bar markers over cycles (hatched with a red outline: rejected; dark outline: final).

        Args:
            indices: the cycle of each bar.
            colour_: the trace's colour.

        Returns:
            the marker dict.
        """
        roles = [self.role(i) for i in indices]
        return {
            "color": colour_,
            "pattern": {"shape": [ROLE_PATTERNS[role] for role in roles], "solidity": 0.5},
            "line": {
                "color": [ROLE_OUTLINES[role][0] for role in roles],
                "width": [ROLE_OUTLINES[role][1] if role != "accepted" else 0.0 for role in roles],
            },
        }


# --------------------------------------------------------------------------------------------- scales

#: A positive series spanning more decades than this (max ÷ min) gets a log axis by default.
LOG_DECADES = 1.5


def spans_decades(values: Iterable[object], decades: float = LOG_DECADES) -> bool:
    """Whether the positive finite values span more than ``decades`` powers of ten.

    Args:
        values: the series (None, non-finite and non-positive values are ignored; a log axis cannot
            show them anyway).
        decades: the span that calls for a log axis. Default :data:`LOG_DECADES`.

    Returns:
        True when ``log10(max / min) > decades``.
    """
    positive = [value for value in numbers(values) if value is not None and value > 0.0]
    if len(positive) < 2:
        return False
    return math.log10(max(positive) / min(positive)) > decades
