"""An experiment's live progress is one typed record, stored sparse and read back leniently."""

from __future__ import annotations

import math

import pytest

from backend.progress import IMPORTED, ProgressDetail, Source, Stage
from backend.schemas import ExperimentDetail


def _epoch(loss: float = 0.5) -> ProgressDetail:
    return ProgressDetail.of_epoch(
        cycle=2,
        epoch=3,
        epochs=4,
        metric_name="accuracy",
        loss=loss,
        metric=0.9,
        val_loss=None,
        val_metric=0.8,
    )


def test_an_epoch_is_stored_with_its_set_fields_only() -> None:
    assert _epoch().stored() == {
        "cycle": 2,
        "epoch": 3,
        "epochs": 4,
        "metric_name": "accuracy",
        "loss": 0.5,
        "metric": 0.9,
        "val_metric": 0.8,
    }


@pytest.mark.parametrize("loss", [math.nan, math.inf, -math.inf])
def test_a_value_that_is_not_finite_is_left_out(loss: float) -> None:
    assert "loss" not in _epoch(loss).stored()  # PostgreSQL's JSON refuses NaN and infinities


def test_a_benchmark_stage_is_added_and_dropped_with_the_cycles_it_names() -> None:
    benchmarking = _epoch().benchmarking([0, 5])
    assert benchmarking.stored()["stage"] == "benchmarking" and benchmarking.benchmark_cycles == [0, 5]
    assert ProgressDetail.read(benchmarking.stored()).stage is Stage.benchmarking
    assert benchmarking.without_stage().stored() == _epoch().stored()


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        (None, ProgressDetail()),
        ([1, 2], ProgressDetail()),
        ({"cycle": "not a number"}, ProgressDetail()),
        ({"stage": "a stage this version does not know"}, ProgressDetail()),
        ({"cycle": 1, "written_by": "an older version"}, ProgressDetail(cycle=1)),
        ({"source": "local-run"}, IMPORTED),
    ],
)
def test_a_stored_document_is_read_leniently(stored: object, expected: ProgressDetail) -> None:
    assert ProgressDetail.read(stored) == expected


def test_the_api_schema_names_every_field_of_the_progress() -> None:
    schema = ExperimentDetail.model_json_schema(mode="serialization")
    fields = schema["$defs"]["ProgressDetail"]["properties"]
    assert set(fields) == set(ProgressDetail.model_fields)
    assert IMPORTED.source is Source.local_run
