"""Pure pieces of managing runs: specs flattened into settings, the side-by-side settings table, the
parallel-coordinates figure, speed-up rows, and a recipe's leading comment."""

from __future__ import annotations

import json

import pytest

from backend.figures.compare import speedup_rows
from backend.figures.inputs import CycleRow, ExperimentSeries
from backend.figures.settings import flatten, model_label, parcoords_figure, settings_table
from backend.service.catalog import first_sentence, leading_comment
from prunespec.presets import preset


def _cycle(index: int, flops: int, val_metric: float = 0.5) -> CycleRow:
    return CycleRow(
        index=index,
        widths={"hidden": 10},
        widths_after={"hidden": 5},
        params=flops // 2,
        flops=flops,
        metric_name="rmse",
        val_metric=val_metric,
    )


def test_a_spec_flattens_to_dotted_settings_with_the_model_named_by_its_preset() -> None:
    spec = {
        "name": "x",
        "model": preset("lenet-5").model_dump(mode="json"),
        "training": {"epochs": 3, "loss": "mse"},
        "benchmark": {"formats": ["float32", "int8_full"]},
        "pruning": {"layers": None},
    }

    assert flatten(spec) == {
        "name": "x",
        "model": "lenet-5",
        "training.epochs": 3,
        "training.loss": "mse",
        "benchmark.formats": "float32, int8_full",
        "pruning.layers": None,
    }
    assert model_label({"input_shape": [2], "layers": [{}, {}, {}]}) == "custom (3 layers)"


def test_the_settings_table_marks_what_differs_including_settings_one_spec_lacks() -> None:
    rows = settings_table([{"a": 1, "b": {"c": "x"}}, {"a": 1, "b": {"c": "y"}, "d": 2}])

    assert [(row.setting, row.values, row.differs) for row in rows] == [
        ("a", (1, 1), False),
        ("b.c", ("x", "y"), True),
        ("d", (None, 2), True),
    ]


def test_parcoords_uses_categories_for_text_settings_and_skips_unfinished_experiments() -> None:
    experiments = [
        ExperimentSeries(id=1, name="a", metric_name="rmse", cycles=(_cycle(0, 100), _cycle(1, 40, 0.1))),
        ExperimentSeries(id=2, name="b", metric_name="rmse", cycles=(_cycle(0, 100), _cycle(1, 20, 0.2))),
        ExperimentSeries(id=3, name="c <b>", metric_name="rmse"),
    ]
    specs = [
        {"name": "a", "training": {"optimizer": "sgd", "epochs": 2}},
        {"name": "b", "training": {"optimizer": "adam", "epochs": 2}},
        {"name": "c", "training": {"optimizer": "rmsprop", "epochs": 9}},
    ]

    (trace,) = parcoords_figure(experiments, specs)["data"]

    optimizer, metric, flops, params = trace["dimensions"]
    assert optimizer == {
        "label": "training.optimizer",
        "values": [1, 0],
        "tickvals": [0, 1],
        "ticktext": ["adam", "sgd"],
    }
    assert (metric["values"], flops["values"], params["values"]) == ([0.1, 0.2], [40, 20], [20, 10])
    assert trace["line"]["color"] == [0, 1]
    json.dumps(trace, allow_nan=False)


def test_parcoords_needs_one_spec_per_experiment() -> None:
    with pytest.raises(ValueError, match="1 specs for 2 experiments"):
        parcoords_figure([ExperimentSeries(id=1, name="a"), ExperimentSeries(id=2, name="b")], [{}])


def test_speed_up_rows_divide_cycle_zero_flops_by_the_final_models() -> None:
    done = ExperimentSeries(id=1, name="a", cycles=(_cycle(1, 25), _cycle(0, 100)), final_cycle=1)
    empty = ExperimentSeries(id=2, name="b")

    flops, latency = speedup_rows([done, empty], [2.5, None])

    assert (flops.values, latency.values) == ((4.0, None), (2.5, None))


def test_a_recipe_is_described_by_its_leading_comment() -> None:
    text = (
        "# Hu et al. 2016, trimming. Second sentence.\n#   indented detail\nname: x  # not this\n# nor this\n"
    )

    assert leading_comment(text) == "Hu et al. 2016, trimming. Second sentence.\n  indented detail"
    assert first_sentence(leading_comment(text)) == "Hu et al. 2016, trimming."
