"""The kept model in every chart: final and rejected cycles marked one way, log scales when values span
decades, gaps for unmeasured cycles, a sensible fidelity range, the output layer hidden from widths and
the metric-vs-FLOPs figure. Figures are checked as strict JSON with exact values.
"""

from __future__ import annotations

import json
from typing import Any

import plotly.graph_objects as go
import pytest

from backend.figures import (
    CycleMarks,
    CycleRow,
    EpochPoint,
    ExperimentSeries,
    Figure,
    TFLiteRow,
    activation_heatmap_figure,
    compare_loss_figure,
    compare_widths_figure,
    costs_figure,
    metric_flops_figure,
    pareto_figure,
    speedup_figure,
    tflite_figure,
    training_figure,
    widths_figure,
)
from backend.figures.common import spans_decades
from backend.figures.inputs import LayerHistogram
from backend.figures.tflite import FIDELITY_MIN_RANGE, fidelity_range
from backend.service.figures import prunable_layers
from prunespec.metrics import higher_is_better


def strict(fig: Figure) -> dict[str, Any]:
    """The figure through strict JSON (no NaN) and accepted by plotly's own validator."""
    loaded: dict[str, Any] = json.loads(json.dumps(fig, allow_nan=False))
    go.Figure(loaded)
    return loaded


def cycle(index: int, d1: int, *, accepted: bool = True, val_metric: float | None = 0.9) -> CycleRow:
    """A cycle of a d1 → out model; d1 halves each cycle."""
    return CycleRow(
        index=index,
        widths={"d1": d1, "out": 10},
        widths_after={"d1": d1 // 2, "out": 10},
        params=100 * d1,
        flops=1000 * d1,
        val_metric=val_metric,
        accepted=accepted,
    )


#: Cycle 2 was rejected (tolerance stop): cycle 1 is the kept model.
REJECTED_LAST = [cycle(0, 40), cycle(1, 20), cycle(2, 10, accepted=False, val_metric=0.5)]


def test_marks_take_the_newest_accepted_cycle_as_final_and_name_rejected_ones() -> None:
    marks = CycleMarks.of(REJECTED_LAST)
    assert marks == CycleMarks(final=1, rejected=frozenset({2}))
    assert [marks.role(i) for i in range(3)] == ["accepted", "final", "rejected"]
    assert marks.label(1) == "cycle 1 · final (kept)"
    assert marks.label(2) == "cycle 2 · rejected"
    assert marks.words() == {"1": "final (kept)", "2": "rejected"}
    assert CycleMarks.of(REJECTED_LAST, final_cycle=0).final == 0
    assert CycleMarks.of(REJECTED_LAST, final_cycle=7).final == 1  # unknown recorded cycle: fall back


def test_widths_mark_the_kept_and_the_rejected_cycle_and_hide_the_output_layer() -> None:
    fig = strict(widths_figure(REJECTED_LAST, layers=["d1"]))
    (bars,) = fig["data"]
    assert bars["name"] == "d1"
    assert bars["y"] == [20, 10, 5]
    assert bars["marker"]["pattern"]["shape"] == ["", "", "/"]
    assert bars["marker"]["line"]["color"] == ["#ffffff", "#222222", "#e15759"]
    assert bars["marker"]["line"]["width"] == [0.0, 2.0, 1.5]
    assert bars["hovertext"][2].startswith("cycle 2 · rejected<br>")
    xaxis = fig["layout"]["xaxis"]
    assert xaxis["tickvals"] == [0, 1, 2]
    assert xaxis["ticktext"] == ["0", "1<br>final (kept)", "2<br>rejected"]


def test_widths_skip_asked_layers_the_cycles_lack() -> None:
    fig = strict(widths_figure(REJECTED_LAST, layers=["d1", "gone"]))
    assert [t["name"] for t in fig["data"]] == ["d1"]


def test_costs_mark_the_kept_cycle_with_a_star_and_the_rejected_one_with_an_x() -> None:
    fig = strict(costs_figure(REJECTED_LAST))
    params = fig["data"][0]
    assert params["y"] == [4000, 2000, 1000]
    assert params["marker"]["symbol"] == ["circle", "star", "x"]
    assert params["marker"]["size"] == [7, 14, 10]
    assert params["connectgaps"] is False
    assert fig["layout"]["xaxis"]["ticktext"] == ["0", "1<br>final (kept)", "2<br>rejected"]


def test_a_recorded_final_cycle_wins_over_the_newest_accepted_one() -> None:
    marks = CycleMarks.of(REJECTED_LAST, final_cycle=0)
    fig = strict(costs_figure(REJECTED_LAST, marks=marks))
    assert fig["data"][0]["marker"]["symbol"] == ["star", "circle", "x"]


def test_metric_vs_flops_draws_each_cycle_in_order_with_marks() -> None:
    fig = strict(metric_flops_figure(REJECTED_LAST, "accuracy"))
    (line,) = fig["data"]
    assert line["x"] == [40000, 20000, 10000]
    assert line["y"] == [0.9, 0.9, 0.5]
    assert line["marker"]["symbol"] == ["circle", "star", "x"]
    assert line["mode"] == "lines+markers"
    assert fig["layout"]["xaxis"]["type"] == "linear"  # 4× is not 1.5 decades
    assert fig["layout"]["yaxis"]["title"]["text"] == "validation accuracy (fraction correct)"


def test_metric_vs_flops_of_one_cycle_shows_its_point_and_logs_far_apart_flops() -> None:
    one = strict(metric_flops_figure([cycle(0, 40)], "accuracy"))
    assert one["data"][0]["x"] == [40000] and one["data"][0]["mode"] == "lines+markers"
    assert one["data"][0]["marker"]["symbol"] == ["star"]
    far = [cycle(0, 4000), cycle(1, 40, val_metric=None)]
    fig = strict(metric_flops_figure(far, "rmse"))
    assert fig["layout"]["xaxis"]["type"] == "log"  # 100× = 2 decades
    assert fig["data"][0]["y"] == [0.9, None]
    assert strict(metric_flops_figure([], "rmse"))["data"] == []


def test_spans_decades_ignores_missing_and_non_positive_values() -> None:
    assert spans_decades([1.0, 10.0, 40.0]) is True  # 1.6 decades
    assert spans_decades([1.0, 30.0]) is False  # 1.48 decades
    assert spans_decades([0.0, -5.0, None, float("nan"), 1.0, 20.0]) is False
    assert spans_decades([5.0]) is False


def test_training_loss_axis_goes_log_by_default_when_the_loss_spans_decades() -> None:
    falling = [EpochPoint(0, e, loss, None, None, None) for e, loss in enumerate([2.0, 0.2, 0.02])]
    assert strict(training_figure(falling, "accuracy"))["layout"]["yaxis"]["type"] == "log"
    assert strict(training_figure(falling, "accuracy", log_loss=False))["layout"]["yaxis"]["type"] == "linear"
    flat = [EpochPoint(0, e, loss, None, None, None) for e, loss in enumerate([2.0, 1.5, 1.0])]
    assert strict(training_figure(flat, "accuracy"))["layout"]["yaxis"]["type"] == "linear"


def test_training_rmse_axis_goes_log_when_rmse_spans_decades_but_accuracy_never() -> None:
    rmse = [EpochPoint(0, e, 1.0, value, None, None) for e, value in enumerate([5.0, 0.5, 0.05])]
    assert strict(training_figure(rmse, "rmse"))["layout"]["yaxis2"]["type"] == "log"
    accuracy = [EpochPoint(0, e, 1.0, value, None, None) for e, value in enumerate([0.001, 0.5, 0.9])]
    assert strict(training_figure(accuracy, "accuracy"))["layout"]["yaxis2"]["type"] == "linear"


def test_training_labels_name_the_kept_and_the_rejected_cycle() -> None:
    points = [EpochPoint(c, 0, 1.0, 0.5, None, None) for c in range(3)]
    fig = strict(training_figure(points, "accuracy", marks=CycleMarks(final=1, rejected=frozenset({2}))))
    texts = [note["text"] for note in fig["layout"]["annotations"]]
    assert texts == ["cycle 0", "cycle 1 · final (kept)", "cycle 2 · rejected"]


def test_histogram_counts_are_coloured_on_a_log_scale_by_default() -> None:
    fig = strict(activation_heatmap_figure("d1", [LayerHistogram(0, [0, 9, 99], [0.0, 1.0, 2.0, 3.0])]))
    assert fig["data"][0]["z"] == [[0.0, 1.0, 2.0]]
    assert fig["layout"]["coloraxis"]["colorbar"]["title"]["text"] == "log₁₀(1 + count)"


def benchmark(index: int, fmt: str, keras: float, tflite: float, latency: float = 100.0) -> TFLiteRow:
    return TFLiteRow(index, fmt, "ok", 2048, latency, latency * 1.2, keras, tflite)


def test_unmeasured_cycles_are_gaps_not_joined_by_a_line() -> None:
    rows = [benchmark(0, "float32", 0.9, 0.9), benchmark(3, "float32", 0.8, 0.8, 50.0)]
    fig = strict(tflite_figure(rows))
    latency = fig["data"][0]
    assert latency["x"] == [0, 1, 2, 3]
    assert latency["y"] == [100.0, None, None, 50.0]
    assert latency["connectgaps"] is False
    assert latency["error_y"]["array"] == [20.0, None, None, 10.0]
    assert fig["layout"]["xaxis"]["tickvals"] == [0, 3]


def test_a_tiny_fidelity_difference_is_not_stretched_to_full_height() -> None:
    rows = [benchmark(0, "float32", 0.9, 0.9 + 1e-8), benchmark(1, "float32", 0.8, 0.8)]
    fig = strict(tflite_figure(rows))
    assert fig["layout"]["yaxis3"]["range"] == [-FIDELITY_MIN_RANGE, FIDELITY_MIN_RANGE]
    assert fig["layout"]["yaxis3"]["zeroline"] is True
    assert fidelity_range([0.01, None, -0.02]) == pytest.approx([-0.022, 0.022])


def test_tflite_marks_the_kept_cycle() -> None:
    rows = [benchmark(0, "float32", 0.9, 0.9), benchmark(1, "float32", 0.8, 0.8)]
    fig = strict(tflite_figure(rows, marks=CycleMarks(final=1)))
    assert fig["data"][0]["marker"]["symbol"] == ["circle", "star"]
    assert fig["layout"]["xaxis"]["ticktext"] == ["0", "1<br>final (kept)"]


def test_prunable_layers_of_a_stored_spec_leave_out_the_output_layer() -> None:
    spec = {
        "model": {
            "input_shape": [4],
            "layers": [
                {"type": "dense", "name": "a", "units": 8},
                {"type": "dropout", "name": "drop", "rate": 0.1},
                {"type": "dense", "name": "b", "units": 4},
                {"type": "dense", "name": "out", "units": 2},
            ],
        }
    }
    assert prunable_layers(spec) == ["a", "b"]
    assert prunable_layers({"model": "not a model"}) is None
    assert prunable_layers(None) is None


def test_each_metric_has_one_good_direction() -> None:
    assert higher_is_better("accuracy") is True
    assert higher_is_better("rmse") is False
    assert higher_is_better(None) is False


def test_compare_widths_mark_each_experiments_kept_and_rejected_cycles() -> None:
    series = ExperimentSeries(id=4, name="tol", metric_name="accuracy", cycles=REJECTED_LAST)
    fig = strict(compare_widths_figure([series]))
    d1 = fig["data"][0]
    assert d1["name"] == "tol (#4) · d1"
    assert d1["marker"]["symbol"] == ["circle", "star", "x"]
    assert d1["connectgaps"] is False
    assert "cycle 2 · rejected" in d1["hovertext"][2]


def test_compare_loss_of_one_epoch_shows_its_marker_and_spanning_losses_go_log() -> None:
    one = ExperimentSeries(id=1, name="a", epochs=[EpochPoint(0, 0, 0.5, None, 0.6, None)])
    fig = strict(compare_loss_figure([one]))
    assert [t["mode"] for t in fig["data"]] == ["lines+markers", "lines+markers"]
    assert fig["layout"]["yaxis"]["type"] == "linear"
    falling = [EpochPoint(0, e, loss, None, loss, None) for e, loss in enumerate([3.0, 0.3, 0.01])]
    many = strict(compare_loss_figure([ExperimentSeries(id=2, name="b", epochs=falling)]))
    assert [t["mode"] for t in many["data"]] == ["lines", "lines"]
    assert many["layout"]["yaxis"]["type"] == "log"
    assert (
        strict(compare_loss_figure([ExperimentSeries(id=2, name="b", epochs=falling)], log_loss=False))[
            "layout"
        ]["yaxis"]["type"]
        == "linear"
    )


def test_histograms_and_speedup_name_the_kept_and_the_rejected_cycle() -> None:
    marks = CycleMarks(final=0, rejected=frozenset({1}))
    rows = [LayerHistogram(c, [1, 2], [0.0, 1.0, 2.0]) for c in (0, 1)]
    heatmap = strict(activation_heatmap_figure("d1", rows, marks=marks))
    assert heatmap["layout"]["yaxis"]["ticktext"] == ["0<br>final (kept)", "1<br>rejected"]
    assert heatmap["data"][1]["hovertext"][0][0].startswith("cycle 1 · rejected<br>")
    cycles = [cycle(0, 40), cycle(1, 20, accepted=False)]
    speedup = strict(
        speedup_figure(
            cycles, [benchmark(0, "float32", 0.9, 0.9), benchmark(1, "float32", 0.9, 0.9, 50.0)], marks=marks
        )
    )
    assert speedup["data"][0]["x"] == [1.0, 2.0] and speedup["data"][0]["y"] == [1.0, 2.0]
    assert speedup["data"][0]["marker"]["symbol"] == ["star", "x"]


def test_pareto_stars_each_experiments_kept_cycle_and_leaves_out_rejected_ones() -> None:
    series = ExperimentSeries(id=3, name="tol", metric_name="accuracy", cycles=REJECTED_LAST)
    fig = strict(pareto_figure([series]))
    points = fig["data"][0]
    assert points["x"] == [40000, 20000]  # the rejected cycle 2 is no result
    assert points["marker"]["symbol"] == ["circle", "star"]
    assert "cycle 1 · final (kept)" in points["hovertext"][1]
