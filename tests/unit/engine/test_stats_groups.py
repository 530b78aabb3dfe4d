"""Statistics per group: every probe measured in one traced pass, combined for the criteria."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from prunespec.groups import groups_by_name
from prunespec.layers import ModelSpec
from worker.engine import stats as stats_module
from worker.engine.build import build_model
from worker.engine.criteria import constant_units
from worker.engine.group_stats import combine
from worker.engine.results import LayerStats
from worker.engine.stats import measure, measure_probes

RESIDUAL = ModelSpec.model_validate(
    {
        "input_shape": [3],
        "layers": [
            {"type": "dense", "name": "d0", "units": 4, "activation": "relu"},
            {"type": "dense", "name": "d1", "units": 3, "activation": "relu"},
            {"type": "dense", "name": "d2", "units": 4},
            {"type": "add", "name": "skip", "inputs": ["d0", "d2"]},
            {"type": "activation", "name": "skip_relu", "activation": "relu"},
            {"type": "dense", "name": "out", "units": 1},
        ],
    }
)


def _stats(values: list[list[float]], outputs: int = 10) -> LayerStats:
    rows = np.asarray(values, dtype=np.float64)  # (fields, units): active, zeros, mean, min, max
    units = rows.shape[1]
    return LayerStats(
        layer="x",
        outputs=outputs,
        active=rows[0].astype(np.int64),
        zeros=rows[1].astype(np.int64),
        mean=rows[2],
        variance=np.zeros(units),
        minimum=rows[3],
        maximum=rows[4],
        histogram=np.zeros((units, 2), np.int64),
        bin_edges=np.array([0.0, 0.5, 1.0]),
    )


def test_every_probe_of_a_group_is_measured_in_one_trace() -> None:
    keras.utils.set_random_seed(0)
    model = build_model(RESIDUAL)
    x = np.random.default_rng(0).normal(size=(50, 3)).astype("float32")
    before = stats_module.traces()

    probes = measure_probes(model, RESIDUAL, ["d0", "d1"], x, batch_size=16)
    primary = measure(model, RESIDUAL, ["d0", "d1"], x, batch_size=16)

    assert stats_module.traces() - before == 1
    assert groups_by_name(RESIDUAL)["d0"].probes == ("d0", "d2", "skip_relu")
    assert [s.layer for s in probes["d0"]] == ["d0", "d2", "skip_relu"]
    names = ["d0", "d2", "skip_relu"]
    reference = keras.Model(model.input, [model.get_layer(n).output for n in names]).predict(x, verbose=0)
    for measured, values in zip(probes["d0"], reference, strict=True):
        np.testing.assert_allclose(measured.mean, values.mean(axis=0), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(measured.zeros, (values == 0).sum(axis=0))
    np.testing.assert_array_equal(primary["d0"].mean, probes["d0"][0].mean)


def test_combined_statistics_aggregate_rates_and_call_constant_only_what_is_constant_everywhere() -> None:
    first = _stats([[10, 0, 0], [0, 10, 10], [1.0, 0.0, 0.0], [0.5, 0.0, 0.0], [2.0, 0.0, 0.0]])
    second = _stats([[4, 0, 0], [1, 5, 5], [0.5, 2.0, 0.3], [0.1, 1.0, 0.3], [0.9, 3.0, 0.3]], outputs=5)

    combined = combine([first, second], "mean")

    np.testing.assert_array_equal(combined.zeros, [1, 10, 10])  # rates 0 and 0.2, 1 and 1, 1 and 1
    np.testing.assert_array_equal(combined.active, [9, 0, 0])
    np.testing.assert_allclose(combined.mean, [0.75, 1.0, 0.15])
    np.testing.assert_array_equal(constant_units(combined), [False, False, True])
    np.testing.assert_array_equal(combine([first, second], "max").zeros, [2, 10, 10])
    np.testing.assert_array_equal(combine([first, second], "sum").zeros, [2, 20, 20])
    assert combine([first]) is first
    with pytest.raises(ValueError, match="group_score"):
        combine([first, second], "median")
