"""Pruning criteria and the per-cycle unit selection, on hand-made activation statistics."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Sequence

import numpy as np
import pytest

from prunespec.spec import (
    ActivationCountCriterion,
    ApozCriterion,
    CountBandCriterion,
    NoCriterion,
    PruningSpec,
    VarianceBandCriterion,
    VarianceCriterion,
)
from worker.engine.criteria import (
    AnyCriterion,
    Verdict,
    activation_count,
    always_active_units,
    apoz,
    constant_units,
    count_band,
    evaluate,
    no_criterion,
    removal_cap,
    select_units,
    variance,
    variance_band,
)
from worker.engine.results import LayerStats, Selection

OUTPUTS = 100


def make_stats(
    units: int,
    *,
    active: Sequence[float] | None = None,
    zeros: Sequence[float] | None = None,
    mean: Sequence[float] | None = None,
    var: Sequence[float] | None = None,
    minimum: Sequence[float] | None = None,
    maximum: Sequence[float] | None = None,
    outputs: int = OUTPUTS,
    name: str = "layer",
) -> LayerStats:
    """LayerStats of ``units`` ordinary units (half active, spread 0..2), overridden per array.

    ``zeros`` defaults to ``outputs - active``.
    """

    def arr(values: Sequence[float] | None, default: float, dtype: type) -> np.ndarray:
        if values is None:
            return np.full(units, default, dtype=dtype)
        assert len(values) == units
        return np.asarray(values, dtype=dtype)

    active_arr = arr(active, outputs // 2, np.int64)
    zeros_arr = arr(zeros, 0, np.int64) if zeros is not None else (outputs - active_arr).astype(np.int64)
    return LayerStats(
        layer=name,
        outputs=outputs,
        active=active_arr,
        zeros=zeros_arr,
        mean=arr(mean, 0.5, np.float64),
        variance=arr(var, 0.25, np.float64),
        minimum=arr(minimum, 0.0, np.float64),
        maximum=arr(maximum, 2.0, np.float64),
        histogram=np.zeros((units, 4), dtype=np.int64),
        bin_edges=np.linspace(0.0, 2.0, 5),
    )


def dead(
    units: int,
    indices: list[int],
    *,
    active: Sequence[float] | None = None,
    zeros: Sequence[float] | None = None,
    mean: Sequence[float] | None = None,
    var: Sequence[float] | None = None,
    minimum: Sequence[float] | None = None,
    maximum: Sequence[float] | None = None,
) -> LayerStats:
    """Ordinary units except ``indices``, which are dead ReLUs (never active, constant 0)."""

    def default(value: float, otherwise: float) -> list[float]:
        return [value if u in indices else otherwise for u in range(units)]

    return make_stats(
        units,
        active=default(0.0, OUTPUTS // 2) if active is None else active,
        zeros=zeros,
        mean=default(0.0, 0.5) if mean is None else mean,
        var=default(0.0, 0.25) if var is None else var,
        minimum=minimum,
        maximum=default(0.0, 2.0) if maximum is None else maximum,
    )


def ints(values: np.ndarray) -> list[int]:
    return [int(v) for v in values]


# --------------------------------------------------------------------------------------------- criteria


def test_activation_count_threshold_and_score() -> None:
    stats = make_stats(4, active=[0, 3, 1, 10])
    mask, score = activation_count(stats, 0)
    assert mask.tolist() == [True, False, False, False]
    assert activation_count(stats, 1).mask.tolist() == [True, False, True, False]
    assert score.tolist() == [0.0, -3.0, -1.0, -10.0]


def test_count_band_removes_outliers_on_both_sides() -> None:
    # counts: mean 50, population std sqrt(500) ≈ 22.36
    stats = make_stats(10, active=[50] * 8 + [0, 100])
    mask, score = count_band(stats, 2.0)
    assert np.flatnonzero(mask).tolist() == [8, 9]
    assert score[8] == pytest.approx(50 - 2 * np.sqrt(500))
    assert score[0] == pytest.approx(-2 * np.sqrt(500))
    assert not count_band(stats, 2.5).mask.any()  # band 50 ± 55.9 holds every count


def test_count_band_equal_counts_removes_nothing() -> None:
    assert not count_band(make_stats(5, active=[7] * 5), 0.5).mask.any()


def test_apoz_mean_plus_k_std() -> None:
    # APoZ 0.1 ×4 and 0.9: mean 0.26, std 0.32 -> threshold 0.58
    stats = make_stats(5, active=[90, 90, 90, 90, 10])
    mask, score = apoz(stats, 1.0)
    assert mask.tolist() == [False, False, False, False, True]
    np.testing.assert_allclose(score, [0.1, 0.1, 0.1, 0.1, 0.9])
    assert not apoz(stats, 3.0).mask.any()  # 0.26 + 0.96 > 1


def test_apoz_k_zero_is_strictly_above_mean() -> None:
    stats = make_stats(3, active=[90, 80, 70])  # APoZ 0.1, 0.2, 0.3
    assert apoz(stats, 0.0).mask.tolist() == [False, False, True]


def test_apoz_on_the_threshold_stays() -> None:
    stats = make_stats(3, active=[100, 50, 0])  # APoZ 0, 0.5, 1: mean 0.5 exactly
    assert apoz(stats, 0.0).mask.tolist() == [False, False, True]


@pytest.mark.parametrize("k", [0.0, 1.0])
def test_apoz_all_equal_removes_nothing(k: float) -> None:
    # 0.3 is not exact in binary; the mean of equal values must still not put any unit "above"
    stats = make_stats(7, active=[70] * 7)
    assert not apoz(stats, k).mask.any()


def test_variance_threshold_and_score() -> None:
    stats = make_stats(4, var=[0.0, 1e-7, 1e-3, 1.0])
    mask, score = variance(stats, 1e-6)
    assert mask.tolist() == [True, True, False, False]
    assert variance(stats, 1e-7).mask.tolist() == [True, True, False, False]  # on the threshold: removed
    assert variance(stats, 0.0).mask.tolist() == [True, False, False, False]
    assert score.tolist() == [0.0, -1e-7, -1e-3, -1.0]


def test_variance_band_uses_variance_of_variances() -> None:
    # v mean 0.4, var(v) 0.073 -> open band (0.254, 0.546); with std(v) ≈ 0.27 every unit would be inside
    stats = make_stats(5, var=[0.1, 0.25, 0.35, 0.4, 0.9])
    mask, score = variance_band(stats, 2.0)
    assert mask.tolist() == [False, False, True, True, False]
    np.testing.assert_allclose(score, [-0.3, -0.15, -0.05, 0.0, -0.5], atol=1e-12)


def test_variance_band_equal_variances_removes_nothing() -> None:
    assert not variance_band(make_stats(4, var=[0.3] * 4), 2.0).mask.any()


def test_no_criterion() -> None:
    mask, score = no_criterion(dead(3, [0, 1, 2]))
    assert mask.shape == (3,) and not mask.any()
    assert score.shape == (3,)


def test_constant_units_relative_tolerance() -> None:
    stats = make_stats(
        4,
        mean=[0.0, 5.0, 0.1, 0.5],
        minimum=[0.0, 5.0, 0.1, 0.0],
        maximum=[0.0, 5.0 + 4e-6, 0.1 + 2e-6, 2.0],
    )
    # dead; spread 4e-6 <= 1e-6·5; spread 2e-6 > 1e-6·max(1, 0.1); ordinary
    assert constant_units(stats, 1e-6).tolist() == [True, True, False, False]
    assert constant_units(stats, 1e-5).tolist() == [True, True, True, False]


def test_always_active_units() -> None:
    stats = make_stats(4, zeros=[0, 0, 1, 0], minimum=[0.5, -1.0, 0.0, 2.0])
    assert always_active_units(stats).tolist() == [True, False, False, True]


def test_no_always_active_units_without_measurements() -> None:
    stats = make_stats(2, active=[0, 0], zeros=[0, 0], minimum=[0.5, 0.5], outputs=0)
    assert not always_active_units(stats).any()


@pytest.mark.parametrize(
    ("criterion", "function", "argument"),
    [
        (ActivationCountCriterion(threshold=3), activation_count, 3),
        (CountBandCriterion(k=0.5), count_band, 0.5),
        (ApozCriterion(k=0.5), apoz, 0.5),
        (VarianceCriterion(threshold=0.2), variance, 0.2),
        (VarianceBandCriterion(k=20.0), variance_band, 20.0),
    ],
)
def test_evaluate_dispatches_with_parameters(
    criterion: AnyCriterion, function: Callable[..., Verdict], argument: float
) -> None:
    stats = make_stats(5, active=[0, 3, 10, 50, 90], var=[0.0, 0.1, 0.15, 0.3, 0.9])
    got = evaluate(stats, criterion)
    want = function(stats, argument)
    assert got.mask.tolist() == want.mask.tolist()
    # the fixture makes each rule's mask differ between the spec's parameter and the default one
    assert got.mask.tolist() != function(stats).mask.tolist()
    np.testing.assert_array_equal(got.score, want.score)


def test_evaluate_none() -> None:
    assert not evaluate(dead(2, [0, 1]), NoCriterion()).mask.any()


# --------------------------------------------------------------------------------------------- composer


def spec(**fields: object) -> PruningSpec:
    return PruningSpec.model_validate(fields)


def select_one(stats: LayerStats, pruning: PruningSpec) -> Selection:
    return select_units({"a": stats}, pruning, {"a": stats.units}, ["a"])["a"]


def test_removal_cap() -> None:
    assert removal_cap(0.57, 100) == 57  # 0.57 · 100 = 56.999… in floating point
    assert removal_cap(0.5, 9) == 4
    assert removal_cap(0.01, 10) == 1


def test_cap_keeps_highest_scores() -> None:
    stats = make_stats(10, active=[5, 0, 4, 1, 3, 2, 50, 50, 50, 50])
    pruning = spec(
        criterion={"type": "activation_count", "threshold": 5}, max_fraction=0.3, fold_constant=False
    )
    sel = select_one(stats, pruning)
    assert ints(sel.remove) == [1, 3, 5]  # the three least active of the six selected
    assert sel.remove.dtype == np.int64


def test_cap_is_at_least_one() -> None:
    stats = make_stats(10, active=[0, 1] + [50] * 8)
    pruning = spec(
        criterion={"type": "activation_count", "threshold": 1}, max_fraction=0.05, fold_constant=False
    )
    assert ints(select_one(stats, pruning).remove) == [0]


def test_a_backed_off_step_keeps_the_most_prunable_share_of_each_layers_choice() -> None:
    # unit 0 is dead (constant: it always goes); the criterion picks units 1..6, least active first
    stats = dead(10, [0], active=[0, 1, 2, 3, 4, 5, 6, 50, 50, 50])
    pruning = spec(criterion={"type": "activation_count", "threshold": 6}, max_fraction=1.0)
    widths = {"a": 10}
    full = select_units({"a": stats}, pruning, widths, ["a"])["a"]
    half = select_units({"a": stats}, pruning, widths, ["a"], step=0.5)["a"]
    tiny = select_units({"a": stats}, pruning, widths, ["a"], step=0.01)["a"]
    assert ints(full.remove) == [0, 1, 2, 3, 4, 5, 6]
    assert ints(half.remove) == [0, 1, 2, 3]  # constant unit 0, then floor(0.5 · 6) = 3 least active
    assert ints(tiny.remove) == [0, 1]  # at least one unit where the full step takes any
    assert ints(half.constant) == [0]


def test_min_units_keeps_lowest_scored() -> None:
    stats = make_stats(4, active=[3, 0, 2, 1])
    pruning = spec(
        criterion={"type": "activation_count", "threshold": 10},
        max_fraction=1.0,
        min_units=3,
        fold_constant=False,
    )
    assert ints(select_one(stats, pruning).remove) == [1]


def test_layer_at_min_units_loses_nothing() -> None:
    stats = make_stats(2, active=[0, 0])
    pruning = spec(criterion="activation_count", max_fraction=1.0, min_units=3, fold_constant=False)
    assert select_one(stats, pruning).count == 0


def test_last_unit_is_never_removed() -> None:
    sel = select_one(dead(1, [0]), spec(criterion="activation_count", max_fraction=1.0))
    assert sel.count == 0
    assert sel.constant.size == 0


@pytest.mark.parametrize("fold", [True, False])
def test_every_unit_dead_one_survives(fold: bool) -> None:
    stats = dead(4, [0, 1, 2, 3])
    sel = select_one(stats, spec(criterion="activation_count", max_fraction=1.0, fold_constant=fold))
    assert sel.count == 3
    assert ints(sel.constant) == (ints(sel.remove) if fold else [])


def test_fold_constant_is_outside_the_cap() -> None:
    # units 0-3 dead (variance 0), 4-6 low variance, 7-9 ordinary
    var = [0.0] * 4 + [1e-4, 1e-5, 1e-3] + [0.25] * 3
    stats = dead(10, [0, 1, 2, 3], var=var)
    pruning = spec(criterion={"type": "variance", "threshold": 1e-2}, max_fraction=0.2)
    sel = select_one(stats, pruning)
    assert ints(sel.constant) == [0, 1, 2, 3]
    assert ints(sel.remove) == [0, 1, 2, 3, 4, 5]  # constants + the two flattest of 4-6


def test_fold_constant_off_counts_against_cap() -> None:
    var = [0.0] * 4 + [1e-4, 1e-5, 1e-3] + [0.25] * 3
    stats = dead(10, [0, 1, 2, 3], var=var)
    pruning = spec(criterion={"type": "variance", "threshold": 1e-2}, max_fraction=0.2, fold_constant=False)
    sel = select_one(stats, pruning)
    assert ints(sel.remove) == [0, 1]
    assert sel.constant.size == 0


def test_fold_constant_with_no_criterion() -> None:
    # unit 1 is a constant 3.0 (always active, not dead): folded all the same
    stats = dead(
        4, [0], mean=[0.0, 3.0, 0.5, 0.5], minimum=[0.0, 3.0, 0.0, 0.0], maximum=[0.0, 3.0, 2.0, 2.0]
    )
    assert ints(select_one(stats, spec(criterion="none")).remove) == [0, 1]
    assert ints(select_one(stats, spec(criterion="none")).constant) == [0, 1]
    assert select_one(stats, spec(criterion="none", fold_constant=False)).count == 0


def test_min_units_removes_constants_first() -> None:
    # 0 dead, 1 and 2 selected by the criterion (not constant), 3 ordinary; at most 2 may go
    stats = dead(4, [0], active=[0, 1, 2, 50], maximum=[0.0, 2.0, 2.0, 2.0])
    pruning = spec(criterion={"type": "activation_count", "threshold": 2}, max_fraction=1.0, min_units=2)
    sel = select_one(stats, pruning)
    assert ints(sel.remove) == [0, 1]
    assert ints(sel.constant) == [0]


def _apoz_layer(name: str, active_share: float, selected: bool, constant_at: int | None = None) -> LayerStats:
    """Four units with APoZ ≈ 1 − active_share; unit 0 never active when ``selected``."""
    active = [0 if (selected and u == 0) else int(OUTPUTS * active_share) for u in range(4)]
    mean = [0.5] * 4
    minimum = [-1.0] * 4  # not constant, even the never-active unit
    maximum = [2.0 if a else 0.0 for a in active]
    if constant_at is not None:
        active[constant_at], mean[constant_at] = OUTPUTS, 2.0
        minimum[constant_at] = maximum[constant_at] = 2.0
    return make_stats(4, active=active, mean=mean, minimum=minimum, maximum=maximum, name=name)


def test_layers_per_cycle_trims_highest_mean_apoz_first() -> None:
    stats = {
        "a": _apoz_layer("a", 0.7, selected=True, constant_at=3),  # mean APoZ 0.4, has a constant unit
        "b": _apoz_layer("b", 0.4, selected=True),  # 0.7
        "c": _apoz_layer("c", 0.5, selected=True),  # 0.625
        "d": _apoz_layer("d", 0.1, selected=False),  # 0.9 but the criterion selects nothing
    }
    names = ["a", "b", "c", "d"]
    widths = dict.fromkeys(names, 4)
    pruning = spec(criterion="activation_count", layers_per_cycle=2)
    sel = select_units(stats, pruning, widths, names)
    assert list(sel) == names
    assert {name: ints(s.remove) for name, s in sel.items()} == {"a": [3], "b": [0], "c": [0], "d": []}
    assert ints(sel["a"].constant) == [3]  # constants fold even in layers not trimmed this cycle

    everything = select_units(stats, spec(criterion="activation_count"), widths, names)
    assert ints(everything["a"].remove) == [0, 3]


def test_layers_per_cycle_one() -> None:
    stats = {"x": _apoz_layer("x", 0.6, selected=True), "y": _apoz_layer("y", 0.3, selected=True)}
    sel = select_units(
        stats, spec(criterion="activation_count", layers_per_cycle=1), {"x": 4, "y": 4}, ["x", "y"]
    )
    assert (sel["x"].count, sel["y"].count) == (0, 1)


def test_merge_candidates() -> None:
    # always active: 1, 2 (a constant 3.0, folded) and 4; unit 0 dead
    stats = dead(
        5,
        [0],
        zeros=[OUTPUTS, 0, 0, 10, 0],
        mean=[0.0, 1.0, 3.0, 0.5, 2.0],
        minimum=[0.0, 0.2, 3.0, 0.0, 0.1],
        maximum=[0.0, 2.0, 3.0, 2.0, 4.0],
    )
    sel = select_one(stats, spec(criterion="none", merge_linear=True))
    assert ints(sel.remove) == [0, 2]
    assert ints(sel.merge) == [1, 4]
    assert sel.merge.dtype == np.int64
    assert select_one(stats, spec(criterion="none")).merge.size == 0  # merge_linear off
    unfolded = select_one(stats, spec(criterion="none", merge_linear=True, fold_constant=False))
    assert ints(unfolded.merge) == [1, 2, 4]


def test_single_always_active_unit_is_not_a_merge() -> None:
    stats = make_stats(3, zeros=[5, 0, 5], minimum=[0.0, 0.3, 0.0])
    assert select_one(stats, spec(criterion="none", merge_linear=True)).merge.size == 0


def test_nearly_always_active_units_need_a_tolerance() -> None:
    # unit 0 is zero on 1 of 100 outputs, unit 1 on 5, unit 2 never, unit 3 always
    stats = make_stats(
        4, zeros=[1, 5, 0, OUTPUTS], minimum=[0.0, 0.0, 0.3, 0.0], maximum=[2.0, 2.0, 2.0, 0.0]
    )
    assert always_active_units(stats).tolist() == [False, False, True, False]
    assert always_active_units(stats, 0.01).tolist() == [True, False, True, False]
    assert always_active_units(stats, 0.05).tolist() == [True, True, True, False]


def test_merge_tolerance_adds_nearly_active_units_to_the_merge() -> None:
    stats = make_stats(4, zeros=[1, 0, 40, 2], minimum=[0.0, 0.3, 0.0, 0.0])
    assert select_one(stats, spec(criterion="none", merge_linear=True)).merge.size == 0
    sel = select_one(stats, spec(criterion="none", merge_linear=True, merge_tolerance=0.02))
    assert ints(sel.merge) == [0, 1, 3]


def test_a_single_nearly_active_unit_is_merged_alone_to_make_it_linear() -> None:
    # the last unit of a layer whose kink cuts off a few inputs: merging re-biases it
    nearly = make_stats(2, zeros=[3, OUTPUTS], minimum=[0.0, 0.0], maximum=[2.0, 0.0])
    sel = select_one(nearly, spec(criterion="none", merge_linear=True, merge_tolerance=0.05))
    assert ints(sel.merge) == [0]
    assert select_one(nearly, spec(criterion="none", merge_linear=True)).merge.size == 0
    # a single unit that is already active everywhere needs nothing
    strict = make_stats(2, zeros=[0, OUTPUTS], minimum=[0.3, 0.0], maximum=[2.0, 0.0])
    assert select_one(strict, spec(criterion="none", merge_linear=True, merge_tolerance=0.05)).merge.size == 0


def test_selection_for_every_layer_even_when_empty() -> None:
    stats = {"p": make_stats(3), "q": dead(3, [1])}
    sel = select_units(stats, spec(criterion="activation_count"), {"p": 3, "q": 3}, ["q", "p"])
    assert list(sel) == ["q", "p"]
    for s in sel.values():
        for field in (s.remove, s.constant, s.merge):
            assert field.dtype == np.int64
    assert (sel["p"].count, ints(sel["q"].remove)) == (0, [1])


def test_only_listed_layers_are_considered() -> None:
    stats = {"p": dead(3, [0]), "q": dead(3, [1])}
    assert list(select_units(stats, spec(), {"p": 3, "q": 3}, ["q"])) == ["q"]


def test_unmeasured_layer_gets_empty_selection() -> None:
    stats = make_stats(3, active=[0, 0, 0], outputs=0)
    assert select_one(stats, spec(criterion="activation_count", max_fraction=1.0)).count == 0


def test_width_mismatch_and_missing_stats_raise() -> None:
    stats = {"a": make_stats(3)}
    with pytest.raises(ValueError, match="width"):
        select_units(stats, spec(), {"a": 4}, ["a"])
    with pytest.raises(ValueError, match="statistics"):
        select_units(stats, spec(), {"a": 3, "b": 3}, ["a", "b"])


def test_module_does_not_import_tensorflow() -> None:
    code = (
        "import sys, worker.engine.criteria; sys.exit('tensorflow' in sys.modules or 'keras' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
