"""A model drawn as a graph: layers as nodes in rows by depth, their inputs as edges, widths labelled.

Pure: plain :class:`GraphNode` rows in, a Plotly figure dict out. A sequential model draws as one
column; a branch (a projection shortcut, a squeeze-excitation gate, the arms of a concatenation) takes
the next free column, and an edge that would run through other layers (an identity shortcut) bows out
to their left (the labels are on the right).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from backend.figures.common import (
    AXIS_COLOUR,
    KEPT_COLOUR,
    REMOVED_COLOUR,
    Figure,
    empty_figure,
    escape,
    figure,
    fmt,
    layout,
)

#: The name a layer's ``inputs`` use for the model's input.
INPUT = "input"
#: Pixels per row of the drawing, and around it.
ROW_PX, MARGIN_PX = 34, 110
#: How a node is coloured: its group shrank, it can shrink, its group is fixed, it carries no group.
NodeKind = Literal["pruned", "prunable", "fixed", "other"]
KIND_STYLE: dict[NodeKind, tuple[str, str]] = {
    "pruned": ("pruned", REMOVED_COLOUR),
    "prunable": ("prunable", KEPT_COLOUR),
    "fixed": ("fixed (cannot shrink)", "#9c755f"),
    "other": ("no channel group", "#bab0ac"),
}
EDGE_COLOUR = "#c8c8c8"
#: How far (in columns) an edge that passes other layers bows out to their left.
BOW = 0.25


@dataclass(frozen=True)
class GraphNode:
    """One layer of a model for drawing.

    Attributes:
        name: the layer's name.
        type: its type (``conv2d``, ``add``, ...).
        inputs: the names of the layers it reads (``"input"`` for the model's input), in order.
        width_before, width_after: its output channels before and after (None when it carries no
            channel group, e.g. a flatten).
        groups: the dependency groups whose channels it carries (several for a concatenation).
        fixed: True when every group it carries is fixed (cannot shrink).
    """

    name: str
    type: str
    inputs: tuple[str, ...]
    width_before: int | None = None
    width_after: int | None = None
    groups: tuple[str, ...] = ()
    fixed: bool = False

    @property
    def kind(self) -> NodeKind:
        """How the drawing colours it (see :data:`KIND_STYLE`)."""
        if not self.groups:
            return "other"
        if self.fixed:
            return "fixed"
        if self.width_before is not None and self.width_after is not None:
            if self.width_after < self.width_before:
                return "pruned"
        return "prunable"

    @property
    def width_label(self) -> str:
        """ "16 → 9" when the width changed, "16" when it did not, "" without a width."""
        if self.width_before is None:
            return ""
        if self.width_after is None or self.width_after == self.width_before:
            return fmt(self.width_before)
        return f"{fmt(self.width_before)} → {fmt(self.width_after)}"


def graph_layout(nodes: Sequence[GraphNode]) -> dict[str, tuple[int, int]]:
    """Where each node goes: its row (longest path from the input) and its column.

    A node takes the column of its first input when that cell is free, else the leftmost free column
    of its row, so a chain stays in one column and a branch moves aside.

    Args:
        nodes: the layers in model order (each names only earlier layers or ``"input"``).

    Returns:
        ``{name: (row, column)}`` with the input at ``(0, 0)``.

    Raises:
        ValueError: a node names an input that is neither ``"input"`` nor an earlier node.
    """
    place: dict[str, tuple[int, int]] = {INPUT: (0, 0)}
    taken: dict[int, set[int]] = {0: {0}}
    for node in nodes:
        unknown = [name for name in node.inputs if name not in place]
        if unknown:
            raise ValueError(f"layer '{node.name}' reads '{unknown[0]}', which is not an earlier layer")
        row = 1 + max((place[name][0] for name in node.inputs), default=0)
        used = taken.setdefault(row, set())
        wanted = place[node.inputs[0]][1] if node.inputs else 0
        column = wanted if wanted not in used else min(set(range(len(used) + 1)) - used)
        used.add(column)
        place[node.name] = (row, column)
    return place


def _edge_path(
    start: tuple[int, int], end: tuple[int, int], taken: Mapping[int, set[int]]
) -> tuple[list[float], list[float]]:
    """The points of one edge: straight when nothing lies between, else bowed out to the left of the
    layers it passes (their labels are on the right)."""
    (row0, col0), (row1, col1) = start, end
    low, high = min(col0, col1), max(col0, col1)
    passed = [
        column for row in range(row0 + 1, row1) for column in taken.get(row, ()) if low <= column <= high
    ]
    if not passed:
        return [float(col0), float(col1)], [float(-row0), float(-row1)]
    side = min(passed) - BOW
    xs = [float(col0), side, side, float(col1)]
    ys = [float(-row0), -row0 - 0.5, -row1 + 0.5, float(-row1)]
    return xs, ys


def _hover(node: GraphNode) -> str:
    lines = [f"<b>{escape(node.name)}</b> ({escape(node.type)})", f"inputs: {escape(', '.join(node.inputs))}"]
    if node.groups:
        lines.append(f"group{'s' if len(node.groups) > 1 else ''}: {escape(', '.join(node.groups))}")
    if node.width_label:
        lines.append(f"width: {escape(node.width_label)}")
    if node.fixed:
        lines.append("fixed: its channels cannot be removed")
    return "<br>".join(lines)


def architecture_graph_figure(
    nodes: Sequence[GraphNode], input_shape: Sequence[int] = (), *, uirevision: str | int = "graph"
) -> Figure:
    """The model as a graph: one marker per layer with its name and width, lines from its inputs.

    Args:
        nodes: the layers in model order (see :class:`GraphNode`).
        input_shape: the model's input shape, shown on the input node. Default unknown.
        uirevision: kept across redraws of the same view.

    Returns:
        the figure: an edge trace, then one marker trace per node kind present (legend: pruned,
        prunable, fixed, no channel group). Its ``layout.height`` grows with the rows.

    Raises:
        ValueError: a node names an input that is neither ``"input"`` nor an earlier node.
    """
    title = "Model graph"
    if not nodes:
        return empty_figure(title, uirevision, "No layers")
    place = graph_layout(nodes)
    taken: dict[int, set[int]] = {}
    for row, column in place.values():
        taken.setdefault(row, set()).add(column)
    edge_x: list[float | None] = []
    edge_y: list[float | None] = []
    for node in nodes:
        for source in node.inputs:
            xs, ys = _edge_path(place[source], place[node.name], taken)
            edge_x += [*xs, None]
            edge_y += [*ys, None]
    traces: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": "inputs",
            "x": edge_x,
            "y": edge_y,
            "line": {"color": EDGE_COLOUR, "width": 1.5},
            "hoverinfo": "skip",
            "showlegend": False,
        }
    ]
    shape = "×".join(str(size) for size in input_shape)
    traces.append(
        {
            "type": "scatter",
            "mode": "markers+text",
            "name": "input",
            "x": [0],
            "y": [0],
            "text": [f"input {shape}".strip()],
            "textposition": "middle right",
            "hovertext": [f"input {shape}".strip()],
            "hoverinfo": "text",
            "marker": {"symbol": "diamond", "size": 11, "color": AXIS_COLOUR},
            "showlegend": False,
        }
    )
    for kind, (label, colour) in KIND_STYLE.items():
        members = [node for node in nodes if node.kind == kind]
        if not members:
            continue
        traces.append(
            {
                "type": "scatter",
                "mode": "markers+text",
                "name": label,
                "x": [place[node.name][1] for node in members],
                "y": [-place[node.name][0] for node in members],
                "text": [
                    escape(f"{node.name}  {node.width_label}" if node.width_label else node.name)
                    for node in members
                ],
                "textposition": "middle right",
                "textfont": {"size": 11},
                "hovertext": [_hover(node) for node in members],
                "hoverinfo": "text",
                "marker": {"size": 10, "color": colour, "line": {"color": "#ffffff", "width": 1}},
            }
        )
    rows = max(row for row, _ in place.values())
    columns = max(column for _, column in place.values())
    hidden = {"visible": False, "fixedrange": True}
    return figure(
        traces,
        layout(
            title,
            uirevision,
            xaxis={**hidden, "range": [-0.15 - BOW, columns + 2.5]},
            yaxis={**hidden, "range": [-rows - 0.6, 0.6]},
            height=MARGIN_PX + ROW_PX * (rows + 1),
            margin={"l": 20, "r": 20, "t": 50, "b": 10},
            legend={"orientation": "h", "x": 1.0, "xanchor": "right", "y": 1.0, "yanchor": "bottom"},
            showlegend=True,
        ),
    )
