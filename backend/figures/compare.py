"""Figures comparing experiments: widths per layer over cycles, loss curves overlaid; the compare
table's speed-up rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from backend.figures.common import (
    DASHES,
    SYMBOLS,
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
from backend.figures.cycles import prunable_names
from backend.figures.inputs import ExperimentSeries, cycle_order
from backend.figures.tables import CompareRow
from backend.figures.training import epoch_axis

#: Most experiments one compare view draws.
MAX_COMPARED = 20

COMPARE_WIDTHS_TITLE = "Units kept per layer"
COMPARE_LOSS_TITLE = "Loss per epoch"
#: The compare table's speed-up rows.
FLOPS_SPEEDUP_LABEL = "speed-up, FLOPs (cycle 0 / final)"
LATENCY_SPEEDUP_LABEL = "speed-up, TFLite latency (cycle 0 / final)"


def speedup_rows(
    experiments: Sequence[ExperimentSeries], latency_speedups: Sequence[float | None]
) -> list[CompareRow]:
    """The speed-up of each experiment's final model over its cycle 0 model.

    Args:
        experiments: the compared experiments, in column order.
        latency_speedups: each experiment's measured TFLite latency speed-up (None where not measured).

    Returns:
        Two summary rows: cycle 0 FLOPs / final FLOPs (None without both cycles), and the latency
        speed-up as measured.
    """
    flops: list[float | None] = []
    for experiment in experiments:
        first = min(experiment.cycles, key=lambda cycle: cycle.index, default=None)
        final = experiment.final
        if first is None or final is None or final.flops <= 0:
            flops.append(None)
        else:
            flops.append(first.flops / final.flops)
    latency = [number(value) for value in latency_speedups]
    return [
        CompareRow(FLOPS_SPEEDUP_LABEL, "summary", tuple(flops)),
        CompareRow(LATENCY_SPEEDUP_LABEL, "summary", tuple(latency)),
    ]


def check_count(experiments: Sequence[ExperimentSeries]) -> None:
    """Refuse to compare more than :data:`MAX_COMPARED` experiments.

    Args:
        experiments: the compared experiments.

    Raises:
        ValueError: there are more than :data:`MAX_COMPARED`.
    """
    if len(experiments) > MAX_COMPARED:
        raise ValueError(f"at most {MAX_COMPARED} experiments can be compared, not {len(experiments)}")


def experiment_style(position: int) -> tuple[str, str]:
    """Colour and marker symbol of an experiment (the symbol changes every ten experiments).

    Args:
        position: the experiment's position in the compared list, from 0.

    Returns:
        (hex colour, Plotly marker symbol).
    """
    return colour(position), SYMBOLS[(position // 10) % len(SYMBOLS)]


def compare_widths_figure(
    experiments: Sequence[ExperimentSeries], *, uirevision: str | int = "compare-widths"
) -> Figure:
    """Units kept per layer against cycle, one line per experiment × layer.

    Args:
        experiments: at most :data:`MAX_COMPARED` experiments.
        uirevision: kept across updates. Default "compare-widths".

    Returns:
        one trace per (experiment, layer) with x = cycle and y = ``widths_after``; colour = experiment,
        dash = layer position; the legend groups an experiment's layers; only its prunable groups are
        drawn (``ExperimentSeries.prunable``, else every layer but the output, see
        :func:`prunable_names`). Each experiment's final (kept) cycle is a star and its rejected
        cycles an x, as on the experiment page.

    Raises:
        ValueError: more than :data:`MAX_COMPARED` experiments.
    """
    check_count(experiments)
    traces: list[dict[str, Any]] = []
    for position, experiment in enumerate(experiments):
        ordered = cycle_order(experiment.cycles)
        marks = experiment.marks
        line_colour, symbol = experiment_style(position)
        name = escape(experiment.label)
        layers = prunable_names(ordered) if experiment.prunable is None else experiment.prunable
        for layer_position, layer in enumerate(layers):
            kept = [cycle.widths_after.get(layer, cycle.widths.get(layer)) for cycle in ordered]
            traces.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": f"{name} · {escape(layer)}",
                    "legendgroup": name,
                    "x": [cycle.index for cycle in ordered],
                    "y": kept,
                    "line": {"color": line_colour, "dash": DASHES[layer_position % len(DASHES)]},
                    "marker": marks.line_marker([cycle.index for cycle in ordered], line_colour, symbol),
                    "connectgaps": False,
                    "hovertext": [
                        f"{name}<br>layer {escape(layer)} · {marks.label(cycle.index)}"
                        f"<br>units kept {fmt(width)}"
                        for cycle, width in zip(ordered, kept, strict=True)
                    ],
                    "hoverinfo": "text",
                }
            )
    if not traces:
        return empty_figure(COMPARE_WIDTHS_TITLE, uirevision)
    return figure(
        traces,
        layout(
            COMPARE_WIDTHS_TITLE,
            uirevision,
            xaxis=axis("cycle", dtick=1),
            yaxis=axis("units kept after pruning (units / channels)", rangemode="tozero"),
        ),
    )


def compare_loss_figure(
    experiments: Sequence[ExperimentSeries],
    *,
    train: bool = True,
    validation: bool = True,
    log_loss: bool | None = None,
    uirevision: str | int = "compare-loss",
) -> Figure:
    """Loss per global epoch (cycles one after another) of every experiment, overlaid.

    Args:
        experiments: at most :data:`MAX_COMPARED` experiments.
        train: draw the training loss (dotted). Default True.
        validation: draw the validation loss (solid). Default True.
        log_loss: a log loss axis; None (default): log when the losses span more than
            :data:`LOG_DECADES` decades.
        uirevision: kept across updates. Default "compare-loss".

    Returns:
        per experiment, up to two line traces sharing its colour and legend group (a series of one
        value shows its marker; missing values are gaps).

    Raises:
        ValueError: more than :data:`MAX_COMPARED` experiments.
    """
    check_count(experiments)
    splits = [
        (attr, word, dash)
        for attr, word, dash, on in (
            ("val_loss", "validation", "solid", validation),
            ("loss", "train", "dot", train),
        )
        if on
    ]
    traces: list[dict[str, Any]] = []
    drawn: list[float | None] = []
    for position, experiment in enumerate(experiments):
        placed = epoch_axis(experiment.epochs)
        line_colour, _ = experiment_style(position)
        name = escape(experiment.label)
        for attribute, word, dash in splits:
            values = [number(getattr(point, attribute)) for point in placed.epochs]
            finite = sum(value is not None for value in values)
            if not finite:
                continue
            drawn.extend(values)
            traces.append(
                {
                    "type": "scatter",
                    "mode": "lines" if finite > 1 else "lines+markers",
                    "connectgaps": False,
                    "name": f"{name} · {word}",
                    "legendgroup": name,
                    "x": placed.x,
                    "y": values,
                    "line": {"color": line_colour, "dash": dash},
                    "hovertext": [
                        f"{name}<br>cycle {point.cycle} · epoch {point.epoch} (global {index})"
                        f"<br>{word} loss {fmt(value)}"
                        for point, index, value in zip(placed.epochs, placed.x, values, strict=True)
                    ],
                    "hoverinfo": "text",
                }
            )
    if not traces:
        return empty_figure(COMPARE_LOSS_TITLE, uirevision)
    return figure(
        traces,
        layout(
            COMPARE_LOSS_TITLE,
            uirevision,
            xaxis=axis("epoch (global, across cycles)"),
            yaxis=axis(
                "loss", type="log" if (spans_decades(drawn) if log_loss is None else log_loss) else "linear"
            ),
        ),
    )
