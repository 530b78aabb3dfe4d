"""TFLite figures: latency, size and fidelity per cycle and format; FLOPs reduction against speed-up."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from backend.figures.common import (
    REFERENCE_COLOUR,
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
)
from backend.figures.inputs import CycleRow, TFLiteRow

TFLITE_TITLE = "TFLite latency, size and fidelity per cycle"
SPEEDUP_TITLE = "FLOPs reduction vs TFLite latency speed-up"

#: (y axis, axis title, panel, unit) of the three panels, top to bottom.
_PANELS: tuple[tuple[str, str, str, str], ...] = (
    ("y", "median latency (µs)", "latency", "µs"),
    ("y2", "model size (KiB)", "size", "KiB"),
    ("y3", "TFLite − Keras metric", "fidelity", ""),
)
_DOMAINS = ([0.70, 1.0], [0.36, 0.64], [0.0, 0.30])
#: The fidelity panel shows at least ± this much around zero, so a 1e-8 difference stays a flat line.
FIDELITY_MIN_RANGE = 1e-3


def formats(rows: Sequence[TFLiteRow]) -> list[str]:
    """The TFLite formats present, most rows first (ties by name).

    Args:
        rows: benchmarks.

    Returns:
        distinct format names.
    """
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.format] = counts.get(row.format, 0) + 1
    return sorted(counts, key=lambda name: (-counts[name], name))


def _panel_value(row: TFLiteRow, panel: str) -> float | None:
    if panel == "latency":
        return number(row.latency_median_us)
    if panel == "size":
        size = number(row.model_bytes)
        return None if size is None else size / 1024.0
    keras, tflite = number(row.keras_metric), number(row.tflite_metric)
    return None if keras is None or tflite is None else tflite - keras


def _with_gaps(own: Sequence[TFLiteRow]) -> list[tuple[int, TFLiteRow | None]]:
    """Every cycle from the first to the last measured one, None where this format was not measured."""
    by_cycle = {row.cycle_index: row for row in own}
    first, last = min(by_cycle), max(by_cycle)
    return [(index, by_cycle.get(index)) for index in range(first, last + 1)]


def fidelity_range(values: Sequence[float | None], minimum: float = FIDELITY_MIN_RANGE) -> list[float]:
    """A y range centred on zero wide enough for the differences, and never narrower than ± ``minimum``.

    Args:
        values: TFLite − Keras differences (None ignored).
        minimum: the smallest half-width. Default :data:`FIDELITY_MIN_RANGE`.

    Returns:
        ``[-half, half]`` with ``half = max(minimum, 1.1 × the largest |difference|)``.
    """
    largest = max((abs(value) for value in values if value is not None), default=0.0)
    half = max(minimum, 1.1 * largest)
    return [-half, half]


def tflite_figure(
    rows: Sequence[TFLiteRow], *, marks: CycleMarks | None = None, uirevision: str | int = "tflite"
) -> Figure:
    """Median latency (error bar up to the 90th percentile), model size and metric change per cycle.

    Args:
        rows: the experiment's benchmarks, any order; rows without numbers (failed, pending) are skipped.
        marks: the final and rejected cycles (star and x markers, named on the x ticks). Default: none.
        uirevision: kept across live updates. Default "tflite".

    Returns:
        per format, one line trace in each of three stacked panels sharing x = cycle (one legend
        entry per format): latency (y), size in KiB (y2), ``tflite_metric − keras_metric`` (y3).
        Cycles a format did not measure are None (a gap, never joined by a line); the fidelity panel
        spans at least ± :data:`FIDELITY_MIN_RANGE` around zero.
    """
    usable = [row for row in rows if any(_panel_value(row, panel) is not None for _, _, panel, _ in _PANELS)]
    if not usable:
        return empty_figure(TFLITE_TITLE, uirevision)
    marks = marks or CycleMarks()
    traces: list[dict[str, Any]] = []
    differences: list[float | None] = []
    for position, name in enumerate(formats(usable)):
        placed = _with_gaps([row for row in usable if row.format == name])
        x = [index for index, _ in placed]
        for panel_index, (yaxis, _, panel, unit) in enumerate(_PANELS):
            values = [None if row is None else _panel_value(row, panel) for _, row in placed]
            if panel == "fidelity":
                differences.extend(values)
            if all(value is None for value in values):
                continue
            trace: dict[str, Any] = {
                "type": "scatter",
                "mode": "lines+markers",
                "name": escape(name),
                "legendgroup": escape(name),
                "showlegend": panel_index == 0,
                "x": x,
                "y": values,
                "yaxis": yaxis,
                "connectgaps": False,
                "line": {"color": colour(position)},
                "marker": marks.line_marker(x, colour(position)),
                "hovertext": [
                    f"{marks.label(index)} · {escape(name)}<br>{panel} {fmt(value)} {unit}".rstrip()
                    for index, value in zip(x, values, strict=True)
                ],
                "hoverinfo": "text",
            }
            if panel == "latency":
                p90 = [None if row is None else number(row.latency_p90_us) for _, row in placed]
                trace["error_y"] = {
                    "type": "data",
                    "symmetric": False,
                    "array": [
                        None if high is None or median is None else max(0.0, high - median)
                        for high, median in zip(p90, values, strict=True)
                    ],
                    "arrayminus": [0.0] * len(placed),
                    "thickness": 1,
                }
            traces.append(trace)
    axes: dict[str, Any] = {}
    for (yaxis, title, panel, _), domain in zip(_PANELS, _DOMAINS, strict=True):
        key = "yaxis" if yaxis == "y" else f"yaxis{yaxis[1:]}"
        if panel == "fidelity":
            axes[key] = axis(
                title,
                domain=domain,
                anchor="x",
                range=fidelity_range(differences),
                zeroline=True,
                zerolinecolor=REFERENCE_COLOUR,
            )
        else:
            axes[key] = axis(title, domain=domain, anchor="x", rangemode="tozero")
    cycles = sorted({row.cycle_index for row in usable})
    return figure(
        traces,
        layout(TFLITE_TITLE, uirevision, xaxis=marks.cycle_axis(cycles, anchor="y3"), **axes),
    )


def speedup_figure(
    cycles: Sequence[CycleRow],
    rows: Sequence[TFLiteRow],
    *,
    marks: CycleMarks | None = None,
    uirevision: str | int = "speedup",
) -> Figure:
    """How much faster the TFLite model got against how many FLOPs pruning removed.

    For each format the baseline is its earliest cycle with a latency: x = baseline FLOPs ÷ the cycle's
    FLOPs (FLOPs reduction), y = baseline median latency ÷ the cycle's (speed-up). A dotted diagonal
    marks speed-up = FLOPs reduction.

    Args:
        cycles: the experiment's cycles (their FLOPs).
        rows: the experiment's benchmarks; rows without a latency are skipped.
        marks: the final and rejected cycles (star and x markers, named in the hover). Default: none.
        uirevision: kept across live updates. Default "speedup".

    Returns:
        one marker+line trace per format (cycle order) and the diagonal reference trace.
    """
    flops = {cycle.index: cycle.flops for cycle in cycles if cycle.flops > 0}
    usable = [
        row for row in rows if row.cycle_index in flops and (number(row.latency_median_us) or 0.0) > 0.0
    ]
    if not usable:
        return empty_figure(SPEEDUP_TITLE, uirevision)
    marks = marks or CycleMarks()
    traces: list[dict[str, Any]] = []
    largest = 1.0
    for position, name in enumerate(formats(usable)):
        own = sorted((row for row in usable if row.format == name), key=lambda row: row.cycle_index)
        base = own[0]
        base_latency = float(base.latency_median_us or 0.0)
        reduction = [flops[base.cycle_index] / flops[row.cycle_index] for row in own]
        speedup = [base_latency / float(row.latency_median_us or 0.0) for row in own]
        largest = max(largest, *reduction, *speedup)
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": escape(name),
                "x": reduction,
                "y": speedup,
                "line": {"color": colour(position)},
                "marker": marks.line_marker([row.cycle_index for row in own], colour(position)),
                "hovertext": [
                    f"{marks.label(row.cycle_index)} · {escape(name)}<br>FLOPs ÷ {fmt(x, 4)}"
                    f" ({fmt(flops[row.cycle_index])})<br>latency ÷ {fmt(y, 4)}"
                    f" ({fmt(row.latency_median_us)} µs)"
                    for row, x, y in zip(own, reduction, speedup, strict=True)
                ],
                "hoverinfo": "text",
            }
        )
    traces.append(
        {
            "type": "scatter",
            "mode": "lines",
            "name": "speed-up = FLOPs reduction",
            "x": [1.0, largest],
            "y": [1.0, largest],
            "line": {"color": REFERENCE_COLOUR, "dash": "dot", "width": 1},
            "hoverinfo": "skip",
        }
    )
    return figure(
        traces,
        layout(
            SPEEDUP_TITLE,
            uirevision,
            xaxis=axis("FLOPs reduction (× fewer than the first benchmarked cycle)"),
            yaxis=axis("latency speed-up (× faster, median)"),
        ),
    )
