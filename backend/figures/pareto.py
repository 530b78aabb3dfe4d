"""Metric against cost (FLOPs or TFLite latency) across experiments, with the Pareto front."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any, Literal

from backend.figures.common import (
    THRESHOLD_COLOUR,
    Figure,
    axis,
    empty_figure,
    escape,
    figure,
    fmt,
    layout,
    number,
)
from backend.figures.compare import check_count, experiment_style
from backend.figures.inputs import ExperimentSeries, cycle_order
from backend.figures.tflite import formats
from backend.figures.training import metric_title
from prunespec.metrics import HIGHER_IS_BETTER, higher_is_better

#: What the latency view says about comparing latencies across experiments.
LATENCY_NOT_PAIRED = "absolute latencies of different runs are not paired"

__all__ = [
    "HIGHER_IS_BETTER",
    "LATENCY_NOT_PAIRED",
    "ParetoPoint",
    "higher_is_better",
    "pareto_figure",
    "pareto_front",
    "pareto_points",
]


def pareto_front(points: Sequence[tuple[float, float]], *, maximise_metric: bool) -> list[int]:
    """Indices of the points no other point dominates, minimising cost and optimising the metric.

    Point a dominates b when a's cost ≤ b's and a's metric is at least as good, with at least one of
    the two strictly better. So of two points with the same cost only the better metric survives; of
    two with the same metric only the cheaper; identical points do not dominate each other and are
    all on the front. Points with a non-finite coordinate are never on it.

    Args:
        points: (cost, metric) pairs.
        maximise_metric: True when a larger metric is better (accuracy), False when smaller is (rmse).

    Returns:
        the front's indices into ``points``, by ascending cost (ties: by index).
    """
    sign = 1.0 if maximise_metric else -1.0
    candidates = []
    for index, (cost, metric) in enumerate(points):
        finite_cost, finite_metric = number(cost), number(metric)
        if finite_cost is not None and finite_metric is not None:
            candidates.append((finite_cost, sign * finite_metric, index))
    candidates.sort(key=lambda candidate: (candidate[0], -candidate[1], candidate[2]))
    front: list[int] = []
    best_cheaper = float("-inf")  # the best goodness among strictly cheaper points
    for _, group in groupby(candidates, key=lambda candidate: candidate[0]):
        members = list(group)
        top = members[0][1]
        if top > best_cheaper:
            front.extend(index for _, goodness, index in members if goodness == top)
            best_cheaper = top
    return front


@dataclass(frozen=True)
class ParetoPoint:
    """One trained model in the metric-vs-cost plane.

    Attributes:
        experiment: position of its experiment in the compared list.
        cycle: the cycle that trained it.
        cost: FLOPs per example, or median TFLite latency in µs.
        metric: validation metric (the training metric when validation is missing).
    """

    experiment: int
    cycle: int
    cost: float
    metric: float


def pareto_points(
    experiments: Sequence[ExperimentSeries],
    cost: Literal["flops", "latency"],
    tflite_format: str | None = None,
    *,
    final_only: bool = False,
) -> list[ParetoPoint]:
    """Every accepted cycle (or each experiment's final cycle) with a finite metric and cost.

    Args:
        experiments: the compared experiments.
        cost: "flops" (the cycle's FLOPs) or "latency" (its median TFLite latency in ``tflite_format``).
        tflite_format: the format whose latency counts; needed for "latency".
        final_only: one point per experiment, its final cycle. Default False.

    Returns:
        the points, by experiment then cycle.
    """
    points: list[ParetoPoint] = []
    for position, experiment in enumerate(experiments):
        final = experiment.final
        if final_only:
            chosen = [final] if final is not None else []
        else:
            chosen = [cycle for cycle in experiment.cycles if cycle.accepted]
        latency = {
            row.cycle_index: number(row.latency_median_us)
            for row in experiment.tflite
            if row.format == tflite_format
        }
        for cycle in cycle_order(chosen):
            metric = number(cycle.val_metric)
            metric = number(cycle.metric) if metric is None else metric
            value = number(cycle.flops) if cost == "flops" else latency.get(cycle.index)
            if metric is not None and value is not None:
                points.append(ParetoPoint(position, cycle.index, value, metric))
    return points


def pareto_figure(
    experiments: Sequence[ExperimentSeries],
    *,
    cost: Literal["flops", "latency"] = "flops",
    tflite_format: str | None = None,
    final_only: bool = False,
    log_cost: bool = False,
    uirevision: str | int = "compare-pareto",
    metric: str | None = None,
) -> Figure:
    """Validation metric against FLOPs or TFLite latency, every model a point, the Pareto front a staircase.

    Experiments are compared on ``metric`` (default the first one's); experiments with another metric
    are left out and an annotation names them. Accuracy is drawn as a percentage. The latency view's
    axis says that absolute latencies of different runs are not paired measurements. The front
    minimises cost and maximises accuracy (or minimises RMSE), see :func:`pareto_front`.

    Args:
        experiments: at most :data:`MAX_COMPARED` experiments.
        cost: "flops" or "latency". Default "flops".
        tflite_format: the format whose latency counts; default the format with the most benchmarks.
        final_only: one point per experiment (its final cycle) instead of every accepted cycle.
        log_cost: a log-scaled cost axis. Default False.
        uirevision: kept across updates. Default "compare-pareto".
        metric: the metric to compare on ("accuracy", "rmse"); default None: the first experiment's.

    Returns:
        one marker trace per experiment (named by the experiment) and a "Pareto front" line trace
        (last) through the front's points in cost order.

    Raises:
        ValueError: more than :data:`MAX_COMPARED` experiments.
    """
    check_count(experiments)
    title = "Metric vs FLOPs" if cost == "flops" else "Metric vs TFLite latency"
    metric_name = metric or next((e.metric_name for e in experiments if e.metric_name), None)
    kept = [i for i, e in enumerate(experiments) if e.metric_name in (metric_name, None)]
    same = [experiments[i] for i in kept]
    if cost == "latency" and tflite_format is None:
        found = formats([row for e in same for row in e.tflite if number(row.latency_median_us)])
        tflite_format = found[0] if found else None
    if cost == "latency":
        title += f" ({escape(tflite_format or 'no benchmarks')})"
    points = pareto_points(same, cost, tflite_format, final_only=final_only)
    if not points:
        return empty_figure(title, uirevision)
    cost_title = "FLOPs per example" if cost == "flops" else "median TFLite latency (µs)"
    cost_axis_title = cost_title if cost == "flops" else f"{cost_title} · {LATENCY_NOT_PAIRED}"
    percent = metric_name == "accuracy"
    marks = [experiment.marks for experiment in same]
    hover = [
        f"{escape(same[p.experiment].label)} · {marks[p.experiment].label(p.cycle)}<br>"
        f"{escape(metric_name or 'metric')} {f'{p.metric * 100:.2f} %' if percent else fmt(p.metric)}"
        f"<br>{cost_title} {fmt(p.cost)}"
        for p in points
    ]
    traces: list[dict[str, Any]] = []
    for position, experiment in enumerate(same):
        own = [i for i, p in enumerate(points) if p.experiment == position]
        if not own:
            continue
        marker_colour, symbol = experiment_style(kept[position])
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": escape(experiment.label),
                "x": [points[i].cost for i in own],
                "y": [points[i].metric for i in own],
                "marker": marks[position].line_marker([points[i].cycle for i in own], marker_colour, symbol),
                "hovertext": [hover[i] for i in own],
                "hoverinfo": "text",
            }
        )
    front = pareto_front([(p.cost, p.metric) for p in points], maximise_metric=higher_is_better(metric_name))
    traces.append(
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "Pareto front",
            "x": [points[i].cost for i in front],
            "y": [points[i].metric for i in front],
            "line": {"color": THRESHOLD_COLOUR, "dash": "dash", "shape": "hv", "width": 1.5},
            "marker": {
                "color": "rgba(0,0,0,0)",
                "size": 14,
                "line": {"color": THRESHOLD_COLOUR, "width": 1.5},
            },
            "hovertext": [hover[i] + "<br>on the Pareto front" for i in front],
            "hoverinfo": "text",
        }
    )
    annotations = []
    left_out = [escape(e.label) for i, e in enumerate(experiments) if i not in kept]
    if left_out:
        annotations.append(
            {
                "text": f"left out (metric is not {escape(metric_name)}): {', '.join(left_out)}",
                "xref": "paper",
                "yref": "paper",
                "x": 1.0,
                "y": 1.0,
                "xanchor": "right",
                "yanchor": "bottom",
                "showarrow": False,
            }
        )
    return figure(
        traces,
        layout(
            title,
            uirevision,
            xaxis=axis(cost_axis_title, type="log" if log_cost else "linear"),
            yaxis=axis(
                "validation accuracy (%)" if percent else f"validation {metric_title(metric_name)}",
                **({"tickformat": ".1%"} if percent else {}),
            ),
            annotations=annotations,
        ),
    )
