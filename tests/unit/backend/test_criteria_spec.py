"""Criterion definitions (prunespec.criteria) and the pruning spec's rules, target and group score."""

from __future__ import annotations

from typing import Any

import numpy as np
import pydantic
import pytest

from prunespec.criteria import (
    CRITERIA,
    CRITERION_TYPES,
    LABELS,
    BnScaleCriterion,
    WeightNormCriterion,
    bn_after,
    parse_criterion,
)
from prunespec.layers import ModelSpec
from prunespec.spec import ExperimentSpec, PruningSpec, TrainingSpec

LENET5_BN: dict[str, Any] = {
    "input_shape": [28, 28, 1],
    "layers": [
        {"type": "conv2d", "name": "conv1", "filters": 6, "kernel_size": 5, "activation": "linear"},
        {"type": "batch_norm", "name": "bn1"},
        {"type": "activation", "name": "relu1", "activation": "relu"},
        {"type": "max_pool", "name": "pool1", "pool_size": 2},
        {"type": "conv2d", "name": "conv2", "filters": 16, "kernel_size": 5, "activation": "relu"},
        {"type": "max_pool", "name": "pool2", "pool_size": 2},
        {"type": "batch_norm", "name": "bn2"},
        {"type": "flatten", "name": "flat"},
        {"type": "dense", "name": "ip1", "units": 12, "activation": "relu"},
        {"type": "dense", "name": "out", "units": 10},
    ],
}


def _experiment(pruning: dict[str, Any], training: dict[str, Any] | None = None) -> ExperimentSpec:
    return ExperimentSpec.model_validate(
        {
            "name": "lenet5-bn",
            "model": LENET5_BN,
            "dataset": {"name": "mnist"},
            "training": {"loss": "crossentropy", **(training or {})},
            "pruning": pruning,
        }
    )


def test_every_criterion_has_one_definition_with_a_label_and_a_measure() -> None:
    assert set(CRITERIA) == {
        "apoz",
        "activation_count",
        "count_band",
        "variance",
        "variance_band",
        "bn_scale",
        "weight_norm",
        "none",
    }
    assert len(CRITERION_TYPES) == len(CRITERIA)
    for kind, cls in CRITERIA.items():
        assert LABELS[kind] == cls.label and cls.label
        assert cls.source in ("activations", "weights")
    assert [k for k, c in CRITERIA.items() if c.source == "weights"] == ["bn_scale", "weight_norm"]


def test_magnitude_rule_removes_units_at_most_threshold_of_the_layer_mean() -> None:
    gammas = np.array([0.02, -1.0, 0.5, 0.0, 2.48])  # mean |γ| = 0.8
    mask, score = BnScaleCriterion(threshold=0.05).verdict(gammas)
    normalised = np.abs(gammas) / np.abs(gammas).mean()
    assert mask.tolist() == (normalised <= 0.05).tolist() == [True, False, False, True, False]
    np.testing.assert_allclose(score, -normalised)
    (edge,) = BnScaleCriterion(threshold=0.05).thresholds(gammas)
    assert edge.value == pytest.approx(0.05 * 0.8)


def test_magnitude_rule_fraction_adds_the_lowest_units_ties_by_index() -> None:
    norms = np.array([3.0, 1.0, 1.0, 4.0, 2.0, 5.0])
    mask, _ = WeightNormCriterion(threshold=0.0, fraction=0.5).verdict(norms)
    assert np.flatnonzero(mask).tolist() == [1, 2, 4]  # the three lowest: 1, 1, 2
    mask, _ = WeightNormCriterion(threshold=0.0, fraction=0.34).verdict(norms)
    assert np.flatnonzero(mask).tolist() == [1, 2]


def test_parse_criterion_fills_defaults_and_names_unknown_types() -> None:
    assert parse_criterion("weight_norm") == WeightNormCriterion(norm="l1", threshold=0.05, fraction=0.0)
    with pytest.raises(ValueError, match="unknown criterion 'magnitude'"):
        parse_criterion({"type": "magnitude"})


def test_bn_after_follows_per_channel_layers_to_the_batch_norm() -> None:
    model = ModelSpec.model_validate(LENET5_BN)
    assert bn_after(model, "conv1") == "bn1"
    assert bn_after(model, "conv2") == "bn2"  # through the max pool
    assert bn_after(model, "ip1") is None


def test_bn_scale_on_a_layer_without_batch_norm_is_refused_naming_it() -> None:
    with pytest.raises(pydantic.ValidationError, match="batch_norm right after layer 'ip1'"):
        _experiment({"criterion": "bn_scale"})
    spec = _experiment(
        {"criterion": "bn_scale", "rules": [{"layers": ["ip1"], "criterion": "apoz", "max_fraction": 0.2}]}
    )
    assert spec.pruning.rule_for("ip1")[0].type == "apoz" and spec.pruning.rule_for("ip1")[1] == 0.2
    assert spec.pruning.rule_for("conv2") == (BnScaleCriterion(), 0.5)


def test_rules_name_only_prunable_layers_each_once() -> None:
    with pytest.raises(pydantic.ValidationError, match="'out' is not among the prunable layers"):
        _experiment({"rules": [{"layers": ["out"], "criterion": "apoz"}]})
    with pytest.raises(pydantic.ValidationError, match="'conv2' is in rule 0 and rule 1"):
        _experiment({"rules": [{"layers": ["conv2"]}, {"layers": ["conv2", "ip1"]}]})
    with pytest.raises(pydantic.ValidationError, match="'ip1' is not among pruning.layers"):
        _experiment({"layers": ["conv1"], "rules": [{"layers": ["ip1"]}]})


@pytest.mark.parametrize(
    "target",
    [{"flops": 0.0}, {"flops": 1.0}, {"params": -0.1}, {}, {"flops": 0.5, "params": 0.5}, {"macs": 0.5}],
)
def test_target_is_one_cost_fraction_strictly_between_zero_and_one(target: dict[str, float]) -> None:
    with pytest.raises(pydantic.ValidationError):
        PruningSpec.model_validate({"target": target})


def test_target_needs_a_ranking_criterion_and_no_layers_per_cycle() -> None:
    assert PruningSpec.model_validate({"target": {"params": 0.3}}).target.kind == "params"  # type: ignore[union-attr]
    with pytest.raises(pydantic.ValidationError, match="criterion is 'none'"):
        PruningSpec.model_validate({"criterion": "none", "target": {"flops": 0.5}})
    with pytest.raises(pydantic.ValidationError, match="layers_per_cycle"):
        PruningSpec.model_validate({"layers_per_cycle": 1, "target": {"flops": 0.5}})


def test_group_score_and_bn_l1_are_bounded() -> None:
    assert PruningSpec().group_score == "mean"
    with pytest.raises(pydantic.ValidationError):
        PruningSpec.model_validate({"group_score": "median"})
    assert TrainingSpec.model_validate({"bn_l1": 1e-4}).bn_l1 == 1e-4
    with pytest.raises(pydantic.ValidationError):
        TrainingSpec.model_validate({"bn_l1": -1})
    with pytest.raises(pydantic.ValidationError):
        PruningSpec.model_validate({"criterion": {"type": "weight_norm", "norm": "l3"}})


def test_new_pruning_fields_round_trip_through_a_dict() -> None:
    spec = _experiment(
        {
            "criterion": {"type": "weight_norm", "norm": "l2", "fraction": 0.25},
            "group_score": "max",
            "rules": [{"layers": ["ip1"], "criterion": {"type": "apoz", "k": 0.5}}],
            "target": {"flops": 0.5},
        },
        {"bn_l1": 1e-4},
    )
    again = ExperimentSpec.model_validate(spec.model_dump(mode="json"))
    assert again == spec
