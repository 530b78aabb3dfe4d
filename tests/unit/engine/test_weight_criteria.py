"""Weight criteria (bn_scale, weight_norm), per-layer rules, the cost target and bn_l1, on tiny models."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import pytest

from prunespec.costs import model_cost
from prunespec.criteria import normalised
from prunespec.layers import ModelSpec
from prunespec.spec import ExperimentSpec, PruningSpec, TrainingSpec
from worker.engine.build import build_model
from worker.engine.criteria import aggregate, select_units
from worker.engine.cycle import run_cycles
from worker.engine.data import Dataset
from worker.engine.group_stats import combine
from worker.engine.results import CycleResult, EpochRecord, LayerStats
from worker.engine.weight_scores import bn_scale, weight_norm, weight_scores

CONV_BN = ModelSpec.model_validate(
    {
        "input_shape": [6, 6, 2],
        "layers": [
            {"type": "conv2d", "name": "conv", "filters": 4, "kernel_size": 3, "activation": "linear"},
            {"type": "batch_norm", "name": "bn"},
            {"type": "activation", "name": "relu", "activation": "relu"},
            {"type": "flatten", "name": "flat"},
            {"type": "dense", "name": "d1", "units": 4, "activation": "relu"},
            {"type": "dense", "name": "d2", "units": 4, "activation": "relu"},
            {"type": "dense", "name": "out", "units": 2},
        ],
    }
)


def _stats(name: str, units: int, active: Sequence[int] | None = None, outputs: int = 100) -> LayerStats:
    """Ordinary (non-constant) units, half active, unless ``active`` says otherwise."""
    counts = np.asarray(active if active is not None else [outputs // 2] * units, dtype=np.int64)
    return LayerStats(
        layer=name,
        outputs=outputs,
        active=counts,
        zeros=outputs - counts,
        mean=np.full(units, 0.5),
        variance=np.full(units, 0.25),
        minimum=np.zeros(units),
        maximum=np.full(units, 2.0),
        histogram=np.zeros((units, 4), dtype=np.int64),
        bin_edges=np.linspace(0.0, 2.0, 5),
    )


# --------------------------------------------------------------------------------------------- scores


def test_weight_norm_is_the_l1_or_l2_norm_of_each_filter_and_unit() -> None:
    model = build_model(CONV_BN)
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(3, 3, 2, 4))
    dense = rng.normal(size=(64, 4))
    model.get_layer("conv").kernel.assign(kernel)
    model.get_layer("d1").kernel.assign(dense)
    np.testing.assert_allclose(weight_norm(model, CONV_BN, "conv", "l1"), np.abs(kernel).sum(axis=(0, 1, 2)))
    np.testing.assert_allclose(
        weight_norm(model, CONV_BN, "conv", "l2"), np.sqrt((kernel**2).sum(axis=(0, 1, 2))), rtol=1e-6
    )
    np.testing.assert_allclose(weight_norm(model, CONV_BN, "d1", "l1"), np.abs(dense).sum(axis=0), rtol=1e-6)


def test_bn_scale_is_the_absolute_gamma_of_the_batch_norm_after_the_producer() -> None:
    model = build_model(CONV_BN)
    gamma = np.array([0.5, -2.0, 0.0, 1.25])
    model.get_layer("bn").gamma.assign(gamma)
    np.testing.assert_allclose(bn_scale(model, CONV_BN, "conv"), np.abs(gamma))
    with pytest.raises(ValueError, match="layer 'd1': criterion bn_scale needs a batch_norm"):
        bn_scale(model, CONV_BN, "d1")


@pytest.mark.parametrize("how", ["mean", "max", "sum"])
def test_group_score_aggregates_the_members_scores(how: str) -> None:
    model = build_model(CONV_BN)
    rng = np.random.default_rng(1)
    first, second = rng.normal(size=(64, 4)), rng.normal(size=(4, 4))
    model.get_layer("d1").kernel.assign(first)
    model.get_layer("d2").kernel.assign(second)
    pruning = PruningSpec.model_validate(
        {"criterion": {"type": "weight_norm", "norm": "l1"}, "group_score": how}
    )
    scores = weight_scores(model, CONV_BN, ["d1"], pruning, producers={"d1": ("d1", "d2")})
    members = np.stack([np.abs(first).sum(axis=0), np.abs(second).sum(axis=0)])
    expected = {"mean": members.mean(axis=0), "max": members.max(axis=0), "sum": members.sum(axis=0)}[how]
    np.testing.assert_allclose(scores["d1"], expected, rtol=1e-6)
    np.testing.assert_allclose(aggregate(list(members), how), expected)


def test_only_layers_with_a_weight_criterion_get_weight_scores() -> None:
    model = build_model(CONV_BN)
    pruning = PruningSpec.model_validate(
        {"criterion": "apoz", "rules": [{"layers": ["conv"], "criterion": "bn_scale"}]}
    )
    assert list(weight_scores(model, CONV_BN, ["conv", "d1", "d2"], pruning)) == ["conv"]


# --------------------------------------------------------------------------------------------- selection


def test_rules_give_each_layer_its_own_criterion_and_cap() -> None:
    pruning = PruningSpec.model_validate(
        {
            "criterion": {"type": "weight_norm", "threshold": 0.5},
            "rules": [{"layers": ["b"], "criterion": "activation_count", "max_fraction": 0.25}],
            "fold_constant": False,
        }
    )
    stats = {"a": _stats("a", 8), "b": _stats("b", 8, active=[0, 0, 0, 0, 50, 50, 50, 50])}
    scores = {"a": np.array([1.0, 1.0, 1.0, 1.0, 0.1, 1.0, 1.0, 0.2])}  # mean 0.7875
    chosen = select_units(stats, pruning, {"a": 8, "b": 8}, ["a", "b"], scores=scores)
    assert chosen["a"].remove.tolist() == [4, 7]  # 0.127 and 0.254 of the mean are at most 0.5
    assert chosen["b"].remove.tolist() == [0, 1]  # four never active, capped at floor(0.25 · 8) = 2
    with pytest.raises(ValueError, match="layer 'a': criterion weight_norm needs its weight scores"):
        select_units(stats, pruning, {"a": 8, "b": 8}, ["a", "b"])


DENSE = ModelSpec.model_validate(
    {
        "input_shape": [8],
        "layers": [
            {"type": "dense", "name": "h1", "units": 16, "activation": "relu"},
            {"type": "dense", "name": "h2", "units": 16, "activation": "relu"},
            {"type": "dense", "name": "out", "units": 2},
        ],
    }
)


@pytest.mark.parametrize("kind", ["params", "flops"])
def test_the_target_removes_the_least_important_units_until_the_cost_fraction(kind: str) -> None:
    pruning = PruningSpec.model_validate(
        {"criterion": "weight_norm", "target": {kind: 0.4}, "max_cycles": 3, "max_fraction": 0.9}
    )
    rng = np.random.default_rng(2)
    scores = {"h1": rng.uniform(0.1, 2.0, 16), "h2": rng.uniform(0.1, 5.0, 16)}
    base = getattr(model_cost(DENSE), kind)
    spec = DENSE
    for _step in (1, 2):
        widths = spec.widths()
        stats = {name: _stats(name, widths[name]) for name in ("h1", "h2")}
        chosen = select_units(stats, pruning, widths, ["h1", "h2"], scores=scores, spec=spec, baseline=DENSE)
        goal = max(0.4 * base, getattr(model_cost(spec), kind) * 0.4**0.5)
        importance = {name: normalised(scores[name]) for name in scores}
        removed = {name: chosen[name].remove for name in scores}
        kept = {name: np.setdiff1d(np.arange(widths[name]), removed[name]) for name in scores}
        # every removed unit is less important than every kept one, across both layers
        assert max(importance[n][removed[n]].max(initial=-1) for n in scores) < min(
            importance[n][kept[n]].min() for n in scores
        )
        after = spec.with_widths({n: widths[n] - removed[n].size for n in scores})
        assert getattr(model_cost(after), kind) <= goal
        # the fewest: keeping the most important removed unit misses the goal
        last = max(scores, key=lambda n: importance[n][removed[n]].max(initial=-1))
        one_fewer = spec.with_widths({n: widths[n] - removed[n].size + (n == last) for n in scores})
        assert getattr(model_cost(one_fewer), kind) > goal
        spec = after
        scores = {n: scores[n][kept[n]] for n in scores}
    assert getattr(model_cost(spec), kind) <= 0.4 * base


def test_a_backed_off_target_step_removes_the_least_important_share_per_layer() -> None:
    pruning = PruningSpec.model_validate(
        {"criterion": "weight_norm", "target": {"params": 0.2}, "max_cycles": 2, "max_fraction": 0.9}
    )
    rng = np.random.default_rng(4)
    scores = {"h1": rng.uniform(0.1, 2.0, 16), "h2": rng.uniform(0.1, 5.0, 16)}
    widths = DENSE.widths()
    stats = {name: _stats(name, widths[name]) for name in ("h1", "h2")}

    def chosen(step: float) -> dict[str, np.ndarray]:
        picked = select_units(
            stats, pruning, widths, ["h1", "h2"], scores=scores, spec=DENSE, baseline=DENSE, step=step
        )
        return {name: picked[name].remove for name in scores}

    full, half = chosen(1.0), chosen(0.5)
    for name in scores:
        assert full[name].size >= 2
        assert half[name].size == full[name].size // 2
        # the half step keeps the least important of the full step's units in each layer
        least = np.sort(full[name][np.argsort(scores[name][full[name]], kind="stable")][: half[name].size])
        assert half[name].tolist() == least.tolist()
    assert (
        model_cost(DENSE.with_widths({n: 16 - half[n].size for n in scores})).params
        > model_cost(DENSE.with_widths({n: 16 - full[n].size for n in scores})).params
    )


# --------------------------------------------------------------------------------------------- training


def test_bn_l1_penalises_gamma_after_pruned_layers_only() -> None:
    model_spec = ModelSpec.model_validate(
        {
            "input_shape": [4],
            "layers": [
                {"type": "dense", "name": "h", "units": 6},
                {"type": "batch_norm", "name": "bn_h"},
                {"type": "dense", "name": "out", "units": 3},
                {"type": "batch_norm", "name": "bn_out"},
            ],
        }
    )
    plain = build_model(model_spec, TrainingSpec())
    slim = build_model(model_spec, TrainingSpec(bn_l1=0.1))
    slim.set_weights(plain.get_weights())
    gamma = np.array([1.0, -2.0, 0.5, 0.0, 3.0, 1.0])
    for model in (plain, slim):
        model.get_layer("bn_h").gamma.assign(gamma)
    assert sum(float(x) for x in plain.losses) == 0.0
    assert sum(float(x) for x in slim.losses) == pytest.approx(0.1 * np.abs(gamma).sum())
    x = np.random.default_rng(3).normal(size=(32, 4)).astype("float32")
    y = np.random.default_rng(4).normal(size=(32, 3)).astype("float32")
    for model in (plain, slim):
        model.compile(optimizer="sgd", loss="mse")
    assert slim.evaluate(x, y, verbose=0) == pytest.approx(plain.evaluate(x, y, verbose=0) + 0.75, rel=1e-5)


# --------------------------------------------------------------------------------------------- end to end


class _Norms:
    """Records each cycle's conv2 L1 filter norms of the trained model and what the cycle removed."""

    def __init__(self) -> None:
        self.cycles: list[tuple[CycleResult, np.ndarray]] = []

    def on_epoch(self, record: EpochRecord) -> None:
        pass

    def on_cycle(self, result: CycleResult, trained: keras.Model, pruned: keras.Model | None) -> None:
        kernel = np.asarray(trained.get_layer("conv2").kernel)
        self.cycles.append((result, np.abs(kernel).sum(axis=(0, 1, 2))))

    def cancelled(self) -> bool:
        return False


def test_weight_norm_prunes_a_linear_conv_that_apoz_cannot_see() -> None:
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, 300)
    x = (rng.normal(size=(300, 12, 12, 1)) + labels[:, None, None, None]).astype("float32")
    data = Dataset(x[:240], labels[:240], x[240:], labels[240:], num_classes=3, description="tiny images")
    layers: list[dict[str, Any]] = [
        {"type": "conv2d", "name": "conv1", "filters": 4, "kernel_size": 3, "activation": "relu"},
        {"type": "max_pool", "name": "pool1", "pool_size": 2},
        {"type": "conv2d", "name": "conv2", "filters": 8, "kernel_size": 3, "activation": "linear"},
        {"type": "max_pool", "name": "pool2", "pool_size": 2},
        {"type": "flatten", "name": "flat"},
        {"type": "dense", "name": "ip1", "units": 8, "activation": "relu"},
        {"type": "dense", "name": "out", "units": 3},
    ]
    spec = ExperimentSpec.model_validate(
        {
            "name": "lenet5-tiny",
            "model": {"input_shape": [12, 12, 1], "layers": layers},
            "dataset": {"name": "npz", "path": "unused.npz"},
            "training": {"loss": "crossentropy", "epochs": 1, "batch_size": 60},
            "pruning": {
                "criterion": "none",
                "fold_constant": False,
                "rules": [
                    {
                        "layers": ["conv2"],
                        "criterion": {"type": "weight_norm", "threshold": 0, "fraction": 0.25},
                    }
                ],
                "max_cycles": 3,
            },
        }
    )
    norms = _Norms()
    result = run_cycles(spec, data, norms)
    assert [c.widths["conv2"] for c in result.cycles] == [8, 6, 5]
    assert [c.widths["conv1"] for c in result.cycles] == [4, 4, 4]
    first, conv2_norms = norms.cycles[0]
    assert first.removed["conv2"] == sorted(np.argsort(conv2_norms, kind="stable")[:2].tolist())


def test_a_run_with_a_params_target_ends_at_that_fraction_of_cycle_0() -> None:
    rng = np.random.default_rng(6)
    x = rng.uniform(size=(400, 2)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    data = Dataset(x[:300], y[:300], x[300:], y[300:], num_classes=None, description="sum")
    spec = ExperimentSpec.model_validate(
        {
            "name": "sum-target",
            "model": {
                "input_shape": [2],
                "layers": [
                    {"type": "dense", "name": "h1", "units": 12, "activation": "relu"},
                    {"type": "dense", "name": "h2", "units": 12, "activation": "relu"},
                    {"type": "dense", "name": "out", "units": 1},
                ],
            },
            "dataset": {"name": "npz", "path": "unused.npz", "target": "values"},
            "training": {"epochs": 1, "batch_size": 100},
            "pruning": {"criterion": "weight_norm", "target": {"params": 0.5}, "max_cycles": 3},
        }
    )
    result = run_cycles(spec, data)
    params = [c.params for c in result.cycles]
    assert len(params) == 3
    assert params[1] <= params[0] * 0.5**0.5  # the first step of two, evenly spread
    assert params[2] <= 0.5 * params[0]


def test_a_groups_activation_measure_aggregates_its_members_by_group_score() -> None:
    first = _stats("g", 4, active=[100, 90, 10, 100])  # APoZ 0, 0.1, 0.9, 0
    second = _stats("g_add", 4, active=[100, 10, 100, 100])  # APoZ 0, 0.9, 0, 0
    for how, expected, removed in (
        ("max", [0.0, 0.9, 0.9, 0.0], []),  # mean + std = 0.9 exactly: nothing above it
        ("mean", [0.0, 0.5, 0.45, 0.0], [1]),  # mean + std = 0.4753
        ("sum", [0.0, 1.0, 0.9, 0.0], [1]),
    ):
        pruning = PruningSpec.model_validate(
            {"criterion": {"type": "apoz", "k": 1.0}, "group_score": how, "fold_constant": False}
        )
        combined = combine([first, second], how)
        np.testing.assert_allclose(combined.apoz, expected)
        chosen = select_units({"g": combined}, pruning, {"g": 4}, ["g"])
        assert chosen["g"].remove.tolist() == removed, how
    assert combine([first], "mean") is first


class _Gammas(_Norms):
    """Records each cycle's |γ| of ``bn`` in the trained model and the model's regularisation losses."""

    def on_cycle(self, result: CycleResult, trained: keras.Model, pruned: keras.Model | None) -> None:
        gamma = np.abs(np.asarray(trained.get_layer("bn").gamma))
        self.cycles.append((result, gamma))
        self.penalties = [float(loss) for loss in trained.losses]


def test_network_slimming_removes_the_channels_of_smallest_gamma_every_cycle() -> None:
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 2, 200)
    x = (rng.normal(size=(200, 6, 6, 1)) + labels[:, None, None, None]).astype("float32")
    data = Dataset(x[:160], labels[:160], x[160:], labels[160:], num_classes=2, description="tiny images")
    spec = ExperimentSpec.model_validate(
        {
            "name": "slimming-tiny",
            "model": {
                "input_shape": [6, 6, 1],
                "layers": [
                    {
                        "type": "conv2d",
                        "name": "conv",
                        "filters": 8,
                        "kernel_size": 3,
                        "activation": "linear",
                    },
                    {"type": "batch_norm", "name": "bn"},
                    {"type": "activation", "name": "relu", "activation": "relu"},
                    {"type": "flatten", "name": "flat"},
                    {"type": "dense", "name": "out", "units": 2},
                ],
            },
            "dataset": {"name": "npz", "path": "unused.npz"},
            "training": {"loss": "crossentropy", "epochs": 1, "batch_size": 40, "bn_l1": 0.01},
            "pruning": {
                "criterion": {"type": "bn_scale", "threshold": 0, "fraction": 0.25},
                "fold_constant": False,
                "max_cycles": 3,
            },
        }
    )
    gammas = _Gammas()
    result = run_cycles(spec, data, gammas)
    assert [c.widths["conv"] for c in result.cycles] == [8, 6, 5]
    for cycle, gamma in gammas.cycles[:2]:
        lowest = np.argsort(gamma, kind="stable")[: len(cycle.removed["conv"])]
        assert cycle.removed["conv"] == sorted(lowest.tolist())
    assert gammas.penalties and sum(gammas.penalties) == pytest.approx(
        0.01 * gammas.cycles[-1][1].sum(), rel=1e-5
    )


def test_bn_scale_of_a_group_with_a_gate_producer_reads_the_producers_that_have_a_batch_norm() -> None:
    from prunespec.groups import groups_by_name
    from prunespec.presets import preset
    from worker.engine.build import build_model
    from worker.engine.weight_scores import weight_scores

    spec = preset("mobilenet-v2-mini")
    group = groups_by_name(spec)["b3_expand"]
    assert group.producers == ("b3_expand", "b3_se_expand")  # the gate has no batch norm after it
    model = build_model(spec)
    gamma = np.linspace(-1.0, 2.0, group.width).astype("float32")
    norm = model.get_layer("b3_expand_bn")
    norm.set_weights([gamma, *norm.get_weights()[1:]])
    pruning = PruningSpec.model_validate(
        {
            "criterion": {"type": "bn_scale"},
            "rules": [{"layers": ["b3_se_reduce"], "criterion": {"type": "weight_norm"}}],
        }
    )
    scores = weight_scores(model, spec, ["b3_expand"], pruning, producers={"b3_expand": group.producers})
    np.testing.assert_allclose(scores["b3_expand"], np.abs(gamma))


def test_a_cost_target_on_a_residual_graph_resizes_every_producer_of_a_group() -> None:
    from prunespec.groups import groups_by_name, with_group_widths
    from prunespec.presets import preset

    spec = preset("resnet-mini")
    groups = [name for name, g in groups_by_name(spec).items() if g.fixed is None]
    assert len(groups_by_name(spec)["stem"].producers) == 4  # the stem and three residual branches
    pruning = PruningSpec.model_validate(
        {"criterion": "weight_norm", "target": {"params": 0.5}, "max_cycles": 2, "max_fraction": 0.9}
    )
    rng = np.random.default_rng(4)
    widths = spec.widths()
    scores = {name: rng.uniform(0.1, 2.0, widths[name]) for name in groups}
    stats = {name: _stats(name, widths[name]) for name in groups}
    chosen = select_units(stats, pruning, widths, groups, scores=scores, spec=spec, baseline=spec)
    pruned = with_group_widths(spec, {name: widths[name] - chosen[name].count for name in groups})
    assert model_cost(pruned).params <= 0.5 * model_cost(spec).params
    after = pruned.widths()
    for name in groups:  # every producer of a group keeps the same width
        assert {after[p] for p in groups_by_name(spec)[name].producers} == {widths[name] - chosen[name].count}
