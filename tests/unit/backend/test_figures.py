"""The figure builders of backend.figures on hand-made rows: the numbers each trace carries, the axes,
the Pareto front, the architecture diff, the compare table and CSV, escaping of user text and empty states.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np
import plotly.graph_objects as go
import pytest

from backend.figures import (
    MAX_COMPARED,
    NO_DATA,
    CycleRow,
    EpochPoint,
    ExperimentSeries,
    Figure,
    LayerCostRow,
    LayerHistogram,
    TFLiteRow,
    UnitStats,
    activation_heatmap_figure,
    architecture_diff,
    compare_csv,
    compare_loss_figure,
    compare_table,
    compare_widths_figure,
    costs_figure,
    criterion_figure,
    criterion_thresholds,
    empty_figure,
    epoch_axis,
    escape,
    pareto_figure,
    pareto_front,
    speedup_figure,
    tflite_figure,
    training_figure,
    widths_figure,
)
from backend.figures.common import FOLDED_COLOUR, KEPT_COLOUR, REMOVED_COLOUR, fmt, number
from backend.figures.tables import csv_cell
from prunespec.criteria import BnScaleCriterion
from worker.engine import criteria
from worker.engine.results import LayerStats

PAYLOAD = "<img src=x onerror=alert(1)>"
ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"

# --------------------------------------------------------------------------------------------- hand-made rows

COSTS_0 = (
    LayerCostRow("d1", "dense", 80, 160),
    LayerCostRow("drop", "dropout", 0, 0),
    LayerCostRow("d2", "dense", 36, 72),
    LayerCostRow("out", "dense", 10, 20),
)
COSTS_1 = (
    LayerCostRow("d1", "dense", 60, 120),
    LayerCostRow("d2", "dense", 21, 42),
    LayerCostRow("out", "dense", 8, 16),
    LayerCostRow("bn", "batch_norm", 8, 4),
)


def cycle(
    index: int,
    widths: dict[str, int],
    widths_after: dict[str, int],
    params: int,
    flops: int,
    val_metric: float | None = 0.9,
    **extra: Any,
) -> CycleRow:
    """A cycle with the given widths and costs (other numbers made up)."""
    return CycleRow(
        index=index,
        widths=widths,
        widths_after=widths_after,
        params=params,
        flops=flops,
        metric_name=extra.pop("metric_name", "accuracy"),
        loss=0.5,
        metric=0.8,
        val_loss=0.6,
        val_metric=val_metric,
        **extra,
    )


CYCLES = [
    cycle(0, {"d1": 8, "d2": 4, "out": 2}, {"d1": 6, "d2": 3, "out": 2}, 1000, 4000, layer_costs=COSTS_0),
    cycle(1, {"d1": 6, "d2": 3, "out": 2}, {"d1": 5, "d2": 3, "out": 2}, 600, 2000, layer_costs=COSTS_1),
    cycle(2, {"d1": 5, "d2": 3, "out": 2}, {"d1": 5, "d2": 2, "out": 2}, 500, 1000),
]


def epochs(per_cycle: list[int]) -> list[EpochPoint]:
    """Epochs of cycles with the given epoch counts; loss = cycle + epoch / 10, metric = its half."""
    return [
        EpochPoint(c, e, c + e / 10, (c + e / 10) / 2, c + e / 10 + 0.05, None if e == 0 else 0.5)
        for c, count in enumerate(per_cycle)
        for e in range(count)
    ]


def trace(fig: Figure, name: str) -> dict[str, Any]:
    """The one trace called ``name``."""
    found = [t for t in fig["data"] if t.get("name") == name]
    assert len(found) == 1, [t.get("name") for t in fig["data"]]
    return found[0]


def strings(value: Any) -> Iterator[str]:
    """Every string anywhere inside a figure."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings(item)


# --------------------------------------------------------------------------------------------- helpers


def test_escape_turns_markup_into_entities_ampersand_first() -> None:
    assert escape(PAYLOAD) == ESCAPED
    assert escape("a & <b>") == "a &amp; &lt;b&gt;"
    assert escape("&lt;") == "&amp;lt;"  # an entity a user typed stays visible as typed
    assert escape(42) == "42"


@pytest.mark.parametrize("value", [None, float("nan"), float("inf"), -float("inf"), "1.5", True])
def test_number_drops_missing_and_non_finite_values(value: object) -> None:
    assert number(value) is None


def test_fmt_shows_integers_with_separators_and_floats_to_six_digits() -> None:
    assert fmt(1234567) == "1,234,567"
    assert fmt(2000.0) == "2,000"
    assert fmt(0.123456789) == "0.123457"
    assert fmt(None) == "–"


# --------------------------------------------------------------------------------------------- cycles


def test_widths_bars_equal_the_widths_kept_per_layer_and_cycle() -> None:
    fig = widths_figure(list(reversed(CYCLES)))  # any order in, cycle order out
    assert [t["name"] for t in fig["data"]] == ["d1", "d2", "out"]
    d1, d2, out = fig["data"]
    assert d1["x"] == [0, 1, 2]
    assert d1["y"] == [6, 5, 5]
    assert d2["y"] == [3, 3, 2]
    assert out["y"] == [2, 2, 2]
    assert all(t["type"] == "bar" for t in fig["data"])
    assert fig["layout"]["barmode"] == "group"
    assert "width 8 → 6 (removed 2)" in d1["hovertext"][0]


def test_widths_before_stage_and_stacked_option() -> None:
    fig = widths_figure(CYCLES, stage="before", stacked=True, layers=["d2"])
    assert [t["name"] for t in fig["data"]] == ["d2"]
    assert fig["data"][0]["y"] == [4, 3, 3]
    assert fig["layout"]["barmode"] == "stack"


def test_widths_of_a_layer_missing_from_a_cycle_are_gaps() -> None:
    cycles = [cycle(0, {"a": 4}, {"a": 3}, 10, 10), cycle(1, {"a": 3, "b": 2}, {"a": 3, "b": 1}, 9, 9)]
    fig = widths_figure(cycles)
    assert trace(fig, "b")["y"] == [None, 1]


def test_costs_on_two_axes_carry_params_and_flops() -> None:
    fig = costs_figure(CYCLES)
    params, flops = trace(fig, "parameters"), trace(fig, "FLOPs")
    assert params["y"] == [1000, 600, 500]
    assert flops["y"] == [4000, 2000, 1000]
    assert flops["yaxis"] == "y2" and "yaxis" not in params
    assert fig["layout"]["yaxis2"]["overlaying"] == "y"
    assert "FLOPs 2,000 (50 % of cycle 0)" in flops["hovertext"][1]


def test_costs_normalised_to_the_first_cycle() -> None:
    fig = costs_figure(CYCLES, normalise=True)
    assert trace(fig, "parameters")["y"] == pytest.approx([100.0, 60.0, 50.0])
    assert trace(fig, "FLOPs")["y"] == pytest.approx([100.0, 50.0, 25.0])
    assert "yaxis2" not in fig["layout"]
    assert "yaxis" not in trace(fig, "FLOPs")


# --------------------------------------------------------------------------------------------- training


def test_epoch_axis_runs_across_cycles_in_training_order() -> None:
    rows = epochs([3, 3, 2])
    placed = epoch_axis(list(reversed(rows)))
    assert placed.x == list(range(1, 9))
    assert [(p.cycle, p.epoch) for p in placed.epochs] == [(p.cycle, p.epoch) for p in rows]
    assert placed.starts == [(0, 1), (1, 4), (2, 7)]
    assert placed.boundaries == [3.5, 6.5]


def test_training_curves_share_one_global_axis_with_cycle_boundaries() -> None:
    fig = training_figure(epochs([3, 3, 2]), "accuracy")
    loss = trace(fig, "train loss")
    assert loss["x"] == list(range(1, 9))
    assert loss["y"] == pytest.approx([0.0, 0.1, 0.2, 1.0, 1.1, 1.2, 2.0, 2.1])
    assert trace(fig, "validation loss")["y"][3] == pytest.approx(1.05)
    assert trace(fig, "train accuracy")["yaxis"] == "y2"
    assert trace(fig, "validation accuracy")["y"] == [None, 0.5, 0.5, None, 0.5, 0.5, None, 0.5]
    assert [shape["x0"] for shape in fig["layout"]["shapes"]] == [3.5, 6.5]
    assert all(shape["yref"] == "paper" for shape in fig["layout"]["shapes"])
    labels = {a["text"]: a["x"] for a in fig["layout"]["annotations"]}
    assert labels == {"cycle 0": 0.5, "cycle 1": 3.5, "cycle 2": 6.5}
    assert fig["layout"]["yaxis2"]["title"]["text"] == "accuracy (fraction correct)"
    assert "cycle 1 · epoch 2 (global 6)" in loss["hovertext"][5]


def test_training_curves_during_a_cycle_and_without_validation() -> None:
    rows = [EpochPoint(0, 0, 1.0, 0.5), EpochPoint(0, 1, float("nan"), 0.6), EpochPoint(1, 0, 0.8, 0.7)]
    fig = training_figure(rows, "rmse")
    assert [t["name"] for t in fig["data"]] == ["train loss", "train rmse"]
    assert trace(fig, "train loss")["y"] == [1.0, None, 0.8]
    assert [shape["x0"] for shape in fig["layout"]["shapes"]] == [2.5]
    assert fig["layout"]["yaxis2"]["title"]["text"] == "RMSE (target units)"


# --------------------------------------------------------------------------------------------- activations


def test_heatmap_rows_are_the_histograms_of_each_cycle() -> None:
    rows = [
        LayerHistogram(1, [4, 0, 2], [0.0, 1.0, 2.0, 3.0]),
        LayerHistogram(0, [1, 5, 3], [-1.0, 0.0, 1.0, 2.0]),
    ]
    fig = activation_heatmap_figure("d1", rows, log_colour=False)
    first, second = fig["data"]
    assert first["y"] == [0] and second["y"] == [1]
    assert first["z"] == [[1, 5, 3]] and second["z"] == [[4, 0, 2]]
    assert first["x"] == [-0.5, 0.5, 1.5] and second["x"] == [0.5, 1.5, 2.5]
    assert {t["coloraxis"] for t in fig["data"]} == {"coloraxis"}
    assert "count 5" in first["hovertext"][0][1]


def test_heatmap_log_colour_keeps_counts_in_hover_and_skips_malformed_rows() -> None:
    rows = [LayerHistogram(0, [0, 9, 99], [0.0, 1.0, 2.0, 3.0]), LayerHistogram(1, [1, 2], [0.0, 1.0])]
    fig = activation_heatmap_figure("d1", rows, log_colour=True)
    assert len(fig["data"]) == 1
    assert fig["data"][0]["z"] == [pytest.approx([0.0, 1.0, 2.0])]
    assert "count 99" in fig["data"][0]["hovertext"][0][2]


APOZ = [0.1, 0.2, 0.3, 0.4, 0.9, 0.95]
STATS = UnitStats("d1", 2, 1000, [900, 800, 0, 600, 100, 50], APOZ, [1.0, 2.0, 0.0, 4.0, None, 6.0])


def test_apoz_threshold_is_mean_plus_k_population_std() -> None:
    mean = sum(APOZ) / len(APOZ)
    std = math.sqrt(sum((value - mean) ** 2 for value in APOZ) / len(APOZ))
    measure, thresholds = criterion_thresholds({"type": "apoz", "k": 0.5}, APOZ)
    assert measure == "apoz"
    assert [t.value for t in thresholds] == [pytest.approx(mean + 0.5 * std)]
    fig = criterion_figure(STATS, {"type": "apoz", "k": 0.5}, removed=[4, 5])
    assert [shape["x0"] for shape in fig["layout"]["shapes"]] == [pytest.approx(mean + 0.5 * std)]
    assert "mean + 0.5·std" in fig["layout"]["annotations"][0]["text"]


def test_criterion_figure_colours_removed_and_folded_units() -> None:
    fig = criterion_figure(STATS, "apoz", removed=[2, 4, 5], folded=[2])
    kept = [t for t in fig["data"] if t["type"] == "scatter" and t["legendgroup"] == "kept"][0]
    removed = [t for t in fig["data"] if t["type"] == "scatter" and t["legendgroup"] == "removed"][0]
    folded = [t for t in fig["data"] if t["type"] == "scatter" and t["legendgroup"] == "folded (constant)"][0]
    assert (kept["y"], kept["x"]) == ([0, 1, 3], [0.1, 0.2, 0.4])
    assert (removed["y"], removed["x"]) == ([4, 5], [0.9, 0.95])
    assert folded["y"] == [2]
    assert kept["marker"]["color"] == KEPT_COLOUR
    assert removed["marker"]["color"] == REMOVED_COLOUR
    assert folded["marker"]["color"] == FOLDED_COLOUR
    bars = {t["legendgroup"]: t for t in fig["data"] if t["type"] == "bar"}
    assert (
        sum(bars["kept"]["y"]) == 3
        and sum(bars["removed"]["y"]) == 2
        and sum(bars["folded (constant)"]["y"]) == 1
    )
    assert bars["removed"]["marker"]["color"] == REMOVED_COLOUR
    assert bars["removed"]["name"] == "removed (2)"
    assert fig["layout"]["barmode"] == "stack"


def test_band_criteria_draw_two_thresholds_on_their_measure() -> None:
    counts = [900, 800, 0, 600, 100, 50]
    mean = sum(counts) / 6
    std = math.sqrt(sum((c - mean) ** 2 for c in counts) / 6)
    measure, thresholds = criterion_thresholds({"type": "count_band", "k": 1.0}, counts)
    assert measure == "active"
    assert [t.value for t in thresholds] == pytest.approx([mean - std, mean + std])
    variances = [1.0, 2.0, 0.0, 4.0, None, 6.0]
    finite = [1.0, 2.0, 0.0, 4.0, 6.0]
    centre = sum(finite) / 5
    var = sum((v - centre) ** 2 for v in finite) / 5
    measure, thresholds = criterion_thresholds({"type": "variance_band"}, variances)  # default k = 2
    assert measure == "variance"
    assert [t.value for t in thresholds] == pytest.approx([centre - 2 * var, centre + 2 * var])
    fig = criterion_figure(STATS, {"type": "variance_band"}, removed=[])
    assert sum(len(t["x"]) for t in fig["data"] if t["type"] == "scatter") == 5  # the None unit is skipped


def test_fixed_threshold_criteria_and_none() -> None:
    assert criterion_thresholds({"type": "activation_count", "threshold": 3}, [1, 2])[1][0].value == 3.0
    assert criterion_thresholds("variance", [1.0])[1][0].value == 1e-6
    assert criterion_thresholds("none", APOZ) == ("apoz", [])
    fig = criterion_figure(STATS, {"type": "activation_count", "threshold": 60}, removed=[2, 5])
    assert [shape["x0"] for shape in fig["layout"]["shapes"]] == [60.0]
    assert fig["layout"]["xaxis"]["title"]["text"].startswith("activation count")
    with pytest.raises(ValueError, match="unknown criterion"):
        criterion_thresholds("magnitude", APOZ)


def test_thresholds_separate_the_units_the_engine_criteria_remove() -> None:
    zeros = np.array([10, 200, 950, 400, 990, 30, 500, 640])
    active = 1000 - zeros
    variance = np.array([0.5, 0.01, 3.0, 0.2, 0.21, 1.5, 0.19, 0.7])
    empty = np.zeros(8)
    stats = LayerStats(
        "d1", 1000, active, zeros, empty, variance, empty, empty, np.zeros((8, 1)), np.zeros(2)
    )
    for kind, k, values, verdict in (
        ("apoz", 0.8, stats.apoz, criteria.apoz(stats, 0.8)),
        ("count_band", 1.0, active, criteria.count_band(stats, 1.0)),
        ("variance_band", 1.0, variance, criteria.variance_band(stats, 1.0)),
    ):
        _, thresholds = criterion_thresholds({"type": kind, "k": k}, values.tolist())
        edges = [t.value for t in thresholds]
        if kind == "apoz":
            drawn = values > edges[0]
        elif kind == "count_band":
            drawn = (values < edges[0]) | (values > edges[1])
        else:
            drawn = (values > edges[0]) & (values < edges[1])
        assert drawn.tolist() == verdict.mask.tolist(), kind
        assert 0 < verdict.mask.sum() < 8, kind  # the lines really split the units


def test_weight_criteria_draw_the_threshold_of_their_one_definition() -> None:
    gammas = [0.02, 1.0, 0.5, 0.0, 2.48, 0.8]
    measure, thresholds = criterion_thresholds({"type": "bn_scale", "threshold": 0.1}, gammas)
    assert measure == "bn_scale"
    assert thresholds == BnScaleCriterion(threshold=0.1).thresholds(gammas)
    assert [t.value for t in thresholds] == [pytest.approx(0.1 * sum(gammas) / 6)]
    mask, _ = criteria.evaluate(
        LayerStats("d1", 10, *[np.zeros(6)] * 6, np.zeros((6, 1)), np.zeros(2)),
        BnScaleCriterion(threshold=0.1),
        {"d1": gammas},
    )
    assert mask.tolist() == (np.array(gammas) <= thresholds[0].value).tolist()  # the line splits them
    fig = criterion_figure(STATS, {"type": "weight_norm"}, removed=[0, 3], scores=gammas)
    assert [shape["x0"] for shape in fig["layout"]["shapes"]] == [pytest.approx(0.05 * sum(gammas) / 6)]
    assert fig["layout"]["xaxis"]["title"]["text"].startswith("norm of the unit's incoming weights")
    unrecorded = criterion_figure(STATS, {"type": "bn_scale"}, removed=[])
    assert unrecorded["layout"]["shapes"] == []
    assert "bn_scale not recorded" in unrecorded["layout"]["xaxis"]["title"]["text"]


def test_a_weight_criterion_figure_plots_each_units_recorded_score_in_its_fate() -> None:
    gammas = [0.02, 1.0, 0.5, 0.0, 2.48, 0.8]
    fig = criterion_figure(STATS, {"type": "bn_scale", "threshold": 0.1}, removed=[0, 3], scores=gammas)
    points = {
        trace["name"].split(" (")[0]: dict(zip(trace["y"], trace["x"], strict=True))
        for trace in fig["data"]
        if trace["type"] == "scatter"
    }
    assert points == {"kept": {1: 1.0, 2: 0.5, 4: 2.48, 5: 0.8}, "removed": {0: 0.02, 3: 0.0}}
    threshold = BnScaleCriterion(threshold=0.1).thresholds(gammas)[0].value
    assert [shape["x0"] for shape in fig["layout"]["shapes"]] == [pytest.approx(threshold)]
    assert sum(sum(trace["y"]) for trace in fig["data"] if trace["type"] == "bar") == len(gammas)


# --------------------------------------------------------------------------------------------- TFLite

TFLITE = [
    TFLiteRow(0, "float32", "ok", 4096, 100.0, 130.0, 0.90, 0.90),
    TFLiteRow(2, "float32", "ok", 1024, 40.0, 50.0, 0.88, 0.87),
    TFLiteRow(1, "float32", "ok", 2048, 80.0, 90.0, 0.89, 0.89),
    TFLiteRow(0, "int8", "ok", 1024, 50.0, 55.0, 0.90, 0.85),
    TFLiteRow(1, "int8", "failed"),
]


def test_tflite_panels_carry_latency_size_and_fidelity_per_format() -> None:
    fig = tflite_figure(TFLITE)
    float32 = [t for t in fig["data"] if t["name"] == "float32"]
    latency, size, fidelity = float32
    assert latency["x"] == [0, 1, 2] and latency["y"] == [100.0, 80.0, 40.0]
    assert latency["error_y"]["array"] == [30.0, 10.0, 10.0]
    assert size["yaxis"] == "y2" and size["y"] == [4.0, 2.0, 1.0]
    assert fidelity["yaxis"] == "y3" and fidelity["y"] == pytest.approx([0.0, 0.0, -0.01])
    assert [t["showlegend"] for t in float32] == [True, False, False]
    int8 = [t for t in fig["data"] if t["name"] == "int8"]
    assert int8[0]["x"] == [0]  # the failed row has no numbers
    assert int8[2]["y"] == pytest.approx([-0.05])


def test_speedup_against_flops_reduction_from_the_first_benchmarked_cycle() -> None:
    fig = speedup_figure(CYCLES, TFLITE)
    float32 = trace(fig, "float32")
    assert float32["x"] == pytest.approx([1.0, 2.0, 4.0])
    assert float32["y"] == pytest.approx([1.0, 1.25, 2.5])
    assert trace(fig, "int8")["x"] == [1.0]
    assert trace(fig, "speed-up = FLOPs reduction")["x"] == [1.0, 4.0]


# --------------------------------------------------------------------------------------------- Pareto


def test_pareto_front_maximising_accuracy_with_ties_and_dominated_points() -> None:
    points = [
        (100.0, 0.90),  # 0 front
        (200.0, 0.90),  # 1 dominated by 0 (same accuracy, dearer)
        (200.0, 0.95),  # 2 front
        (200.0, 0.95),  # 3 identical to 2: also front
        (150.0, 0.80),  # 4 dominated by 0
        (300.0, 0.97),  # 5 front
        (300.0, float("nan")),  # 6 never
        (50.0, 0.50),  # 7 front (cheapest)
        (100.0, 0.85),  # 8 dominated by 0 (same cost, worse)
    ]
    assert pareto_front(points, maximise_metric=True) == [7, 0, 2, 3, 5]


def test_pareto_front_minimising_rmse() -> None:
    points = [(100.0, 0.3), (200.0, 0.2), (150.0, 0.35), (50.0, 0.5), (200.0, 0.25), (400.0, 0.2)]
    assert pareto_front(points, maximise_metric=False) == [3, 0, 1]
    assert pareto_front([], maximise_metric=True) == []


def series(identifier: int, name: str, cycles: list[CycleRow], **extra: Any) -> ExperimentSeries:
    return ExperimentSeries(identifier, name, extra.pop("metric_name", "accuracy"), cycles, **extra)


def test_pareto_figure_draws_every_accepted_cycle_and_the_front() -> None:
    a = series(1, "a", [cycle(0, {}, {}, 10, 1000, 0.90), cycle(1, {}, {}, 5, 500, 0.80)])
    b = series(
        2,
        "b",
        [cycle(0, {}, {}, 10, 1000, 0.95), cycle(1, {}, {}, 5, 400, 0.70, accepted=False)],
    )
    c = series(3, "c", [cycle(0, {}, {}, 10, 600, 0.60)])
    fig = pareto_figure([a, b, c])
    assert trace(fig, "a (#1)")["x"] == [1000, 500]
    assert trace(fig, "b (#2)")["x"] == [1000]  # the rejected cycle is no candidate
    front = trace(fig, "Pareto front")
    assert front["x"] == [500, 1000] and front["y"] == [0.80, 0.95]
    assert front["line"]["shape"] == "hv"
    final = pareto_figure([a, b, c], final_only=True)
    assert trace(final, "a (#1)")["x"] == [500]


def test_pareto_figure_on_latency_and_rmse() -> None:
    rows = [TFLiteRow(0, "int8", latency_median_us=30.0), TFLiteRow(1, "int8", latency_median_us=20.0)]
    rows += [TFLiteRow(0, "float32", latency_median_us=90.0)]
    a = series(
        1,
        "a",
        [cycle(0, {}, {}, 1, 1, 0.2, metric_name="rmse"), cycle(1, {}, {}, 1, 1, 0.3, metric_name="rmse")],
        metric_name="rmse",
        tflite=rows + [TFLiteRow(1, "float32", latency_median_us=70.0)],
    )
    fig = pareto_figure([a], cost="latency")  # default format: the one with most benchmarks
    assert "float32" in fig["layout"]["title"]["text"]
    assert trace(fig, "Pareto front")["x"] == [70.0, 90.0]
    fig = pareto_figure([a], cost="latency", tflite_format="int8")
    assert trace(fig, "a (#1)")["x"] == [30.0, 20.0]
    assert trace(fig, "Pareto front")["x"] == [20.0, 30.0]  # lower RMSE is better


def test_pareto_figure_leaves_out_experiments_with_another_metric() -> None:
    a = series(1, "a", [cycle(0, {}, {}, 1, 100, 0.9)])
    b = series(2, PAYLOAD, [cycle(0, {}, {}, 1, 100, 0.1, metric_name="rmse")], metric_name="rmse")
    fig = pareto_figure([a, b])
    assert [t["name"] for t in fig["data"]] == ["a (#1)", "Pareto front"]
    assert fig["layout"]["annotations"][0]["text"] == f"left out (metric is not accuracy): {ESCAPED} (#2)"


# --------------------------------------------------------------------------------------------- compare


def test_compare_widths_has_one_trace_per_experiment_and_layer() -> None:
    a = series(1, "a", CYCLES)
    b = series(2, "b", CYCLES[:1])
    fig = compare_widths_figure([a, b])
    assert len(fig["data"]) == 4  # d1 and d2 of each; the output layer cannot be pruned
    assert trace(fig, "a (#1) · d2")["y"] == [3, 3, 2]
    assert trace(fig, "b (#2) · d1")["x"] == [0]
    assert trace(fig, "a (#1) · d1")["line"]["color"] == trace(fig, "a (#1) · d2")["line"]["color"]
    assert trace(fig, "a (#1) · d1")["line"]["color"] != trace(fig, "b (#2) · d1")["line"]["color"]


def test_compare_refuses_more_than_twenty_experiments() -> None:
    many = [series(i, f"e{i}", CYCLES) for i in range(MAX_COMPARED + 1)]
    for build in (compare_widths_figure, pareto_figure, compare_loss_figure):
        with pytest.raises(ValueError, match="at most 20"):
            build(many)
    assert len(compare_widths_figure(many[:MAX_COMPARED])["data"]) == 2 * MAX_COMPARED  # d1, d2 (no output)


def test_compare_loss_overlays_each_experiments_global_epochs() -> None:
    a = series(1, "a", [], epochs=epochs([2, 2]))
    b = series(2, "b", [], epochs=epochs([3]))
    fig = compare_loss_figure([a, b], train=False)
    assert [t["name"] for t in fig["data"]] == ["a (#1) · validation", "b (#2) · validation"]
    assert trace(fig, "a (#1) · validation")["x"] == [1, 2, 3, 4]
    assert trace(fig, "a (#1) · validation")["y"] == pytest.approx([0.05, 0.15, 1.05, 1.15])
    assert trace(fig, "b (#2) · validation")["x"] == [1, 2, 3]
    both = compare_loss_figure([a])
    assert trace(both, "a (#1) · train")["line"]["dash"] == "dot"


# --------------------------------------------------------------------------------------------- tables


def test_architecture_diff_between_two_cycles() -> None:
    rows = architecture_diff(CYCLES[0], CYCLES[1])
    assert [row.name for row in rows] == ["d1", "drop", "d2", "out", "bn"]
    d1, drop, d2, out, bn = rows
    assert (d1.type, d1.width_before, d1.width_after, d1.params_before, d1.params_after) == (
        "dense",
        8,
        6,
        80,
        60,
    )
    assert (d1.units_removed, d1.change) == (2, "pruned")
    assert (drop.change, drop.params_after, drop.width_before) == ("dropped", None, None)
    assert (d2.width_before, d2.width_after, d2.flops_before, d2.flops_after) == (4, 3, 72, 42)
    assert (out.change, out.units_removed) == ("unchanged", 0)
    assert (bn.change, bn.type, bn.params_before, bn.params_after) == ("added", "batch_norm", None, 8)
    assert d1.as_dict()["units_removed"] == 2 and json.dumps([row.as_dict() for row in rows])


def test_architecture_diff_of_a_cycles_own_pruning() -> None:
    rows = {row.name: row for row in architecture_diff(CYCLES[0])}
    assert (rows["d1"].width_before, rows["d1"].width_after, rows["d1"].params_after) == (8, 6, None)
    assert rows["drop"].change == "unchanged"
    assert rows["d2"].change == "pruned"


def test_compare_table_puts_final_architectures_side_by_side() -> None:
    a = series(1, "a", CYCLES)
    b = series(2, "b", [*CYCLES[:2], cycle(2, {"d1": 1}, {"d1": 1}, 1, 1, accepted=False)])
    c = series(3, "c", [])
    table = compare_table([a, b, c])
    assert table.columns == ("a (#1)", "b (#2)", "c (#3)")
    rows = {row.label: row.values for row in table.rows}
    assert rows["final cycle"] == (2, 1, None)
    assert rows["parameters (initial)"] == (1000, 1000, None)
    assert rows["parameters (final)"] == (500, 600, None)
    assert rows["FLOPs (final)"] == (1000, 2000, None)
    assert rows["units · d1"] == (5, 6, None)
    assert rows["units · d2"] == (3, 3, None)
    assert [row.kind for row in table.rows][-3:] == ["layer"] * 3
    pinned = compare_table([series(4, "p", CYCLES, final_cycle=0)])
    assert {row.label: row.values for row in pinned.rows}["units · d1"] == (8,)


def test_compare_csv_round_trips_and_defuses_formulas() -> None:
    a = series(1, '=HYPERLINK("http://x")', CYCLES)
    b = series(2, 'b, "quoted"', [cycle(0, {"-d": 3}, {"-d": 2}, 7, 8, val_metric=0.123456789012)])
    text = compare_csv(compare_table([a, b]))
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[0] == ["", '\'=HYPERLINK("http://x") (#1)', 'b, "quoted" (#2)']
    by_label = {row[0]: row[1:] for row in parsed[1:]}
    assert by_label["parameters (final)"] == ["500", "7"]
    assert by_label["validation metric (final)"] == ["0.9", "0.123456789012"]
    assert by_label["units · d1"] == ["5", ""]
    assert by_label["units · -d"] == ["", "3"]
    assert by_label["name"] == ['\'=HYPERLINK("http://x")', 'b, "quoted"']
    assert text.endswith("\r\n")
    assert csv_cell("-1+2") == "'-1+2" and csv_cell(-1) == "-1" and csv_cell(float("nan")) == ""


# --------------------------------------------------------------------------------------------- every figure

EXPERIMENTS = [
    series(1, "a", CYCLES, epochs=epochs([2, 2]), tflite=TFLITE),
    series(2, "b", CYCLES[:2], epochs=epochs([3])),
]

BUILDERS: dict[str, Callable[[], Figure]] = {
    "widths": lambda: widths_figure(CYCLES),
    "costs": lambda: costs_figure(CYCLES),
    "costs-normalised": lambda: costs_figure(CYCLES, normalise=True),
    "training": lambda: training_figure(epochs([3, 2]), "accuracy", log_loss=True),
    "heatmap": lambda: activation_heatmap_figure("d1", [LayerHistogram(0, [1, 2], [0.0, 0.5, 1.0])]),
    "criterion": lambda: criterion_figure(STATS, {"type": "count_band", "k": 1}, removed=[2]),
    "tflite": lambda: tflite_figure(TFLITE),
    "speedup": lambda: speedup_figure(CYCLES, TFLITE),
    "compare-widths": lambda: compare_widths_figure(EXPERIMENTS),
    "pareto-flops": lambda: pareto_figure(EXPERIMENTS, log_cost=True),
    "pareto-latency": lambda: pareto_figure(EXPERIMENTS, cost="latency"),
    "compare-loss": lambda: compare_loss_figure(EXPERIMENTS),
}

EMPTY_BUILDERS: dict[str, Callable[[], Figure]] = {
    "widths": lambda: widths_figure([]),
    "costs": lambda: costs_figure([]),
    "training": lambda: training_figure([], None),
    "heatmap": lambda: activation_heatmap_figure("d1", []),
    "criterion": lambda: criterion_figure(UnitStats("d1", 0, 0, [], [], []), "apoz", removed=[]),
    "tflite": lambda: tflite_figure([TFLiteRow(0, "float32", "failed")]),
    "speedup": lambda: speedup_figure([], TFLITE),
    "compare-widths": lambda: compare_widths_figure([]),
    "pareto": lambda: pareto_figure([series(1, "a", [])]),
    "pareto-latency": lambda: pareto_figure(EXPERIMENTS, cost="latency", tflite_format="float16"),
    "compare-loss": lambda: compare_loss_figure([series(1, "a", [])]),
}


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_every_figure_is_strict_json_and_valid_plotly(name: str) -> None:
    fig = BUILDERS[name]()
    assert fig["data"], "a figure with data must draw something"
    text = json.dumps(fig, allow_nan=False)
    go.Figure(json.loads(text))  # raises on any property Plotly does not know
    assert fig["layout"]["uirevision"]
    assert fig["layout"]["title"]["text"]


@pytest.mark.parametrize("name", sorted(EMPTY_BUILDERS))
def test_empty_inputs_give_a_figure_that_says_so(name: str) -> None:
    fig = EMPTY_BUILDERS[name]()
    assert fig["data"] == []
    expected = "No unit statistics for this layer and cycle" if name == "criterion" else NO_DATA
    assert [a["text"] for a in fig["layout"]["annotations"]] == [expected]
    assert fig["layout"]["xaxis"]["visible"] is False
    go.Figure(json.loads(json.dumps(fig, allow_nan=False)))


def test_uirevision_is_stable_and_can_be_chosen() -> None:
    assert widths_figure(CYCLES)["layout"]["uirevision"] == widths_figure(CYCLES[:1])["layout"]["uirevision"]
    assert costs_figure(CYCLES, uirevision="exp-7")["layout"]["uirevision"] == "exp-7"
    assert empty_figure("t", 3)["layout"]["uirevision"] == 3


def test_non_finite_numbers_become_gaps_not_nan() -> None:
    rows = [EpochPoint(0, 0, float("inf"), float("nan"), 1.0, 0.5)]
    fig = training_figure(rows, "accuracy")
    json.dumps(fig, allow_nan=False)
    assert [t["name"] for t in fig["data"]] == ["validation loss", "validation accuracy"]


# --------------------------------------------------------------------------------------------- escaping


def hostile_figures() -> dict[str, Figure]:
    """Figures where every user-typed string is the payload."""
    layers = {PAYLOAD: 4, "ok": 2}
    cycles = [
        cycle(0, layers, {PAYLOAD: 3, "ok": 2}, 100, 1000, 0.9),
        cycle(1, {PAYLOAD: 3, "ok": 2}, {PAYLOAD: 3, "ok": 2}, 80, 500, 0.8),
    ]
    tflite = [TFLiteRow(0, PAYLOAD, "ok", 100, 10.0, 11.0, 0.9, 0.9), TFLiteRow(1, PAYLOAD, "ok", 80, 5.0)]
    hostile = series(1, PAYLOAD, cycles, epochs=epochs([2]), tflite=tflite)
    other = series(2, f"rmse {PAYLOAD}", [], metric_name="rmse")
    stats = UnitStats(PAYLOAD, 0, 10, [1, 2, 3], [0.1, 0.5, 0.9], [1.0, 2.0, 3.0])
    return {
        "widths": widths_figure(cycles),
        "heatmap": activation_heatmap_figure(PAYLOAD, [LayerHistogram(0, [1], [0.0, 1.0])]),
        "criterion": criterion_figure(stats, "apoz", removed=[2]),
        "tflite": tflite_figure(tflite),
        "speedup": speedup_figure(cycles, tflite),
        "compare-widths": compare_widths_figure([hostile]),
        "pareto": pareto_figure([hostile, other]),
        "pareto-latency": pareto_figure([hostile], cost="latency"),
        "compare-loss": compare_loss_figure([hostile]),
        "training": training_figure(epochs([1]), PAYLOAD),
        "empty": empty_figure("t", "u", message=PAYLOAD),
    }


@pytest.mark.parametrize("name", sorted(hostile_figures()))
def test_user_text_never_reaches_a_figure_as_markup(name: str) -> None:
    fig = hostile_figures()[name]
    found = list(strings(fig))
    assert not [s for s in found if "<img" in s or "onerror=alert(1)>" in s]
    assert any(ESCAPED in s for s in found)
    assert not [t.get("hovertemplate") for t in fig["data"] if "&lt;" in (t.get("hovertemplate") or "")]


def test_escaped_user_text_lands_in_names_hover_titles_and_annotations() -> None:
    figs = hostile_figures()
    assert trace(figs["widths"], ESCAPED)["type"] == "bar"
    assert trace(figs["compare-widths"], f"{ESCAPED} (#1) · {ESCAPED}")
    pareto = trace(figs["pareto"], f"{ESCAPED} (#1)")
    assert pareto["hovertext"][0].startswith(f"{ESCAPED} (#1) · cycle 0<br>")
    assert ESCAPED in figs["heatmap"]["layout"]["title"]["text"]
    assert ESCAPED in figs["criterion"]["layout"]["title"]["text"]
    assert ESCAPED in figs["pareto-latency"]["layout"]["title"]["text"]
    assert ESCAPED in figs["pareto"]["layout"]["annotations"][0]["text"]
    assert figs["empty"]["layout"]["annotations"][0]["text"] == ESCAPED
    assert [t["name"] for t in figs["tflite"]["data"]] == [ESCAPED] * 3
    assert ESCAPED in figs["tflite"]["data"][0]["hovertext"][0]
    assert f"train {ESCAPED}" in [t["name"] for t in figs["training"]["data"]]


# --------------------------------------------------------------------------------------------- inputs


def test_inputs_are_built_from_attributes_or_keys() -> None:
    row = SimpleNamespace(
        index=3,
        widths={"d1": 5},
        widths_after={"d1": 4},
        params=10,
        flops=20,
        metric_name="rmse",
        loss=0.1,
        metric=0.2,
        val_loss=0.3,
        val_metric=0.4,
        accepted=False,
        layer_costs=[{"name": "d1", "type": "dense", "params": 10, "flops": 20}],
    )
    built = CycleRow.of(row)
    assert (built.index, built.widths_after, built.val_metric, built.accepted) == (3, {"d1": 4}, 0.4, False)
    assert built.layer_costs == (LayerCostRow("d1", "dense", 10, 20),)
    summary = CycleRow.of({"index": 0, "widths": {"a": 2}, "widths_after": {"a": 1}, "params": 1, "flops": 2})
    assert (summary.metric_name, summary.layer_costs, summary.accepted) == ("accuracy", (), True)
    assert EpochPoint.of({"cycle": 1, "epoch": 2, "loss": 0.5}).val_loss is None
    stats = UnitStats.of(4, {"layer": "d1", "outputs": 9, "active": [1], "apoz": [0.5], "variance": [None]})
    assert (stats.cycle, stats.apoz) == (4, (0.5,))
    assert LayerHistogram.of(2, SimpleNamespace(histogram=[1, 2], bin_edges=[0, 1, 2])).histogram == (1, 2)
    assert TFLiteRow.of({"cycle_index": 1, "format": "int8"}).latency_median_us is None
    with pytest.raises(KeyError, match="index"):
        CycleRow.of({"widths": {}})
