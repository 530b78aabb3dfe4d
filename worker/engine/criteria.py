"""Which units to remove: pruning criteria applied to a cycle's measures, and the per-cycle composer.

The criteria themselves (rule, thresholds, normalised importance, label) are defined once in
``prunespec.criteria``; this module feeds them each layer's measure (an activation statistic from
:class:`LayerStats`, or a weight score from ``worker.engine.weight_scores``) and returns a
:class:`Verdict`: a boolean mask over the layer's units (True = remove) and a score for ranking
(higher = remove first). :func:`select_units` combines the criteria with the pruning recipe (per-layer
rules, the per-layer cap, the minimum width, constant folding, Hu et al.'s layers-per-cycle rule, the
cost target and linear-unit merging) into one :class:`Selection` per layer.

Band rules compare strictly, so a layer whose values are all equal (standard deviation or variance
0) selects nothing by a band rule.

Pure NumPy: this module never imports TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from prunespec.criteria import (
    ActivationCountCriterion,
    AnyCriterion,
    ApozCriterion,
    CountBandCriterion,
    CriterionBase,
    NoCriterion,
    VarianceBandCriterion,
    VarianceCriterion,
)
from prunespec.layers import ModelSpec
from prunespec.spec import PruningSpec
from worker.engine.arrays import BoolArray, FloatArray, IndexArray
from worker.engine.cost_target import towards_target
from worker.engine.results import LayerStats, Selection

# Slack for ``floor(max_fraction · width)`` so that e.g. 0.57 · 100 = 56.999… still caps at 57.
_CAP_SLACK = 1e-9


class Verdict(NamedTuple):
    """A criterion's answer for one layer.

    Attributes:
        mask: (units,) bool, True for the units the criterion would remove.
        score: (units,) float64, higher = remove first; defined for every unit, selected or not.
    """

    mask: BoolArray
    score: FloatArray


def _floats(values: npt.ArrayLike) -> FloatArray:
    return np.asarray(values, dtype=np.float64)


def _indices(mask: BoolArray) -> IndexArray:
    return np.flatnonzero(mask).astype(np.int64)


def _empty_index() -> IndexArray:
    return np.zeros(0, dtype=np.int64)


# --------------------------------------------------------------------------------------------- criteria


def activation_count(stats: LayerStats, threshold: int = 0) -> Verdict:
    """Çallı's activation count (see ``prunespec.criteria.ActivationCountCriterion``).

    Args:
        stats: the layer's statistics.
        threshold: largest activation count still removed; default 0 (units that were never active).

    Returns:
        mask ``active <= threshold``; score ``-active`` (the least active units go first).
    """
    return evaluate(stats, ActivationCountCriterion(threshold=threshold))


def count_band(stats: LayerStats, k: float = 2.0) -> Verdict:
    """Çallı's count band (see ``prunespec.criteria.CountBandCriterion``).

    Args:
        stats: the layer's statistics.
        k: half-width of the band in standard deviations; default 2.

    Returns:
        mask ``|active − mean| > k·std``; score ``|active − mean| − k·std``.
    """
    return evaluate(stats, CountBandCriterion(k=k))


def apoz(stats: LayerStats, k: float = 1.0) -> Verdict:
    """Hu et al.'s network trimming (see ``prunespec.criteria.ApozCriterion``).

    Args:
        stats: the layer's statistics.
        k: how many standard deviations above the layer's mean APoZ a unit must be; default 1.

    Returns:
        mask ``apoz > mean + k·std``; score ``apoz``.
    """
    return evaluate(stats, ApozCriterion(k=k))


def variance(stats: LayerStats, threshold: float = 1e-6) -> Verdict:
    """Çallı's variance criterion (see ``prunespec.criteria.VarianceCriterion``).

    Args:
        stats: the layer's statistics.
        threshold: largest variance still removed; default 1e-6.

    Returns:
        mask ``variance <= threshold``; score ``-variance``.
    """
    return evaluate(stats, VarianceCriterion(threshold=threshold))


def variance_band(stats: LayerStats, k: float = 2.0) -> Verdict:
    """Çallı's autoencoder rule (see ``prunespec.criteria.VarianceBandCriterion``).

    Args:
        stats: the layer's statistics.
        k: half-width of the band in units of var(v); default 2.

    Returns:
        mask ``|v − mean(v)| < k·var(v)``; score ``−|v − mean(v)|``.
    """
    return evaluate(stats, VarianceBandCriterion(k=k))


def no_criterion(stats: LayerStats) -> Verdict:
    """Remove nothing.

    Args:
        stats: the layer's statistics (only its width is used).

    Returns:
        an all-False mask and an all-zero score.
    """
    return evaluate(stats, NoCriterion())


def constant_units(stats: LayerStats, tolerance: float = 1e-6) -> BoolArray:
    """Units whose output is constant on the measured data: ``max − min <= tolerance · max(1, |mean|)``.

    A dead ReLU (minimum = maximum = 0) is constant. Removing a constant unit is exact once its value
    is folded into the next layer's bias.

    Args:
        stats: the layer's statistics.
        tolerance: relative spread still called constant; default 1e-6.

    Returns:
        (units,) bool mask.
    """
    spread = _floats(stats.maximum) - _floats(stats.minimum)
    scale = np.maximum(1.0, np.abs(_floats(stats.mean)))
    return np.asarray(spread <= tolerance * scale, dtype=np.bool_)


def always_active_units(stats: LayerStats, tolerance: float = 0.0) -> BoolArray:
    """Units active on every measured output (``zeros == 0`` and ``minimum > 0``), or on all but a
    ``tolerance`` fraction of them.

    A ReLU unit that never reaches zero on the data is linear there, so all such units of a layer
    are candidates for merging into one. A unit whose kink only just cuts into the data (zero on a
    few inputs at the data's edge) is nearly linear; with ``tolerance > 0`` it counts too, so that
    merging can replace it by a unit that is active everywhere. A layer with no measured outputs has
    none.

    Args:
        stats: the layer's statistics.
        tolerance: largest fraction of measured outputs a unit may be zero on; default 0 (exact).

    Returns:
        (units,) bool mask.
    """
    if stats.outputs <= 0:
        return np.zeros(stats.units, dtype=np.bool_)
    zeros = np.asarray(stats.zeros)
    if tolerance > 0:
        allowed = math.floor(tolerance * stats.outputs)
        return np.asarray((zeros <= allowed) & (_floats(stats.maximum) > 0), dtype=np.bool_)
    return np.asarray((zeros == 0) & (_floats(stats.minimum) > 0), dtype=np.bool_)


def measure_values(
    stats: LayerStats, criterion: CriterionBase, scores: Mapping[str, npt.ArrayLike] | None = None
) -> FloatArray:
    """The per-unit values a criterion reads for one layer.

    Args:
        stats: the layer's statistics (``stats.layer`` names it).
        criterion: the criterion.
        scores: measures by layer name that replace the statistics' own: weight measures
            (``worker.engine.weight_scores``, required by criteria whose ``source`` is "weights"). A
            group's activation statistics arrive already combined over its probes (``group_stats.combine``).

    Returns:
        (units,) float64.

    Raises:
        ValueError: a weight criterion without a score for this layer, or a score of the wrong width.
    """
    if (scores is None or stats.layer not in scores) and criterion.source == "activations":
        return _floats(getattr(stats, criterion.measure))
    if scores is None or stats.layer not in scores:
        raise ValueError(f"layer '{stats.layer}': criterion {criterion.measure} needs its weight scores")
    values = _floats(scores[stats.layer])
    if values.shape != (stats.units,):
        raise ValueError(
            f"layer '{stats.layer}': {values.shape[0] if values.ndim else 0} {criterion.measure} scores "
            f"for {stats.units} units"
        )
    return values


def evaluate(
    stats: LayerStats, criterion: AnyCriterion, scores: Mapping[str, npt.ArrayLike] | None = None
) -> Verdict:
    """Apply a criterion to one layer.

    Args:
        stats: the layer's statistics.
        criterion: one of the criteria of ``prunespec.criteria``.
        scores: weight measures by layer name, for weight criteria (see :func:`measure_values`).

    Returns:
        the criterion's Verdict.

    Raises:
        TypeError: ``criterion`` is not a known criterion.
        ValueError: a weight criterion without scores for the layer.
    """
    if not isinstance(criterion, CriterionBase):
        raise TypeError(f"unknown pruning criterion {type(criterion).__name__}")
    mask, score = criterion.verdict(measure_values(stats, criterion, scores))
    return Verdict(np.asarray(mask, dtype=np.bool_), _floats(score))


def aggregate(values: Sequence[npt.ArrayLike], how: str) -> FloatArray:
    """A channel's score over a dependency group's members (``pruning.group_score``).

    Args:
        values: one (units,) array per member.
        how: "mean", "max" or "sum".

    Returns:
        (units,) float64.

    Raises:
        ValueError: no members, members of different widths, or an unknown ``how``.
    """
    if not values:
        raise ValueError("a group score needs at least one member")
    stacked = np.stack([_floats(v) for v in values])
    if how == "mean":
        return _floats(stacked.mean(axis=0))
    if how == "max":
        return _floats(stacked.max(axis=0))
    if how == "sum":
        return _floats(stacked.sum(axis=0))
    raise ValueError(f"unknown group_score '{how}'; known: mean, max, sum")


# --------------------------------------------------------------------------------------------- composer


def removal_cap(max_fraction: float, width: int) -> int:
    """Most units a criterion may remove from a layer in one cycle: ``max(1, floor(max_fraction · width))``.

    Args:
        max_fraction: the pruning spec's fraction, in (0, 1].
        width: the layer's current width.

    Returns:
        the cap (at least 1; the minimum-width rule is applied separately).
    """
    return max(1, math.floor(max_fraction * width + _CAP_SLACK))


def backed_off(count: int, step: float) -> int:
    """How many of ``count`` chosen units a backed-off step removes: ``max(1, floor(step · count))``, 0 of 0.

    Args:
        count: the units the full step would remove from a layer.
        step: the share of the full step, in (0, 1].

    Returns:
        the smaller count (at least 1 where the full step removes any).
    """
    return 0 if count == 0 else max(1, math.floor(step * count + _CAP_SLACK))


def _ranked(units: IndexArray, score: FloatArray) -> IndexArray:
    """``units`` ordered by score, highest first; ties by lower unit index first."""
    if units.size == 0:
        return units
    order = np.lexsort((units, -score[units]))
    return units[order]


def _sorted(units: npt.ArrayLike) -> IndexArray:
    return np.sort(np.asarray(units, dtype=np.int64))


def select_units(
    stats: Mapping[str, LayerStats],
    pruning: PruningSpec,
    widths: Mapping[str, int],
    layers: Sequence[str],
    *,
    scores: Mapping[str, npt.ArrayLike] | None = None,
    spec: ModelSpec | None = None,
    baseline: ModelSpec | None = None,
    step: float = 1.0,
) -> dict[str, Selection]:
    """Choose the units every prunable layer loses this cycle.

    Each layer's criterion and cap are its rule's in ``pruning.rules``, else ``pruning.criterion`` and
    ``pruning.max_fraction``. Per layer, in this order:

    1. Constant units (when ``pruning.fold_constant``; tolerance ``pruning.constant_tolerance``) are
       always selected, in every layer; they do not count against the cap.
    2. The criterion's other units are ranked by score (ties: lower index first) and capped at
       ``max(1, floor(max_fraction · width))``.
    3. With ``pruning.layers_per_cycle = N``, only the N layers with the highest mean APoZ among those
       where step 2 left something keep their criterion selection (ties: order of ``layers``).
       With ``pruning.target``, step 2's choice is replaced: the units of lowest normalised importance
       across all layers (each layer's criterion, ``importance``; ties: layer order, then unit index)
       go, each layer within its cap, until the model's cost is at most the cycle's goal (see
       :func:`worker.engine.cost_target.cost_goal`); constants count toward it.
       With ``step`` < 1 (a back-off after rejected cycles, ``pruning.backoff``), each layer keeps only
       the first ``max(1, floor(step · n))`` of the n units chosen so far, the most prunable first.
    4. The removal is cut so the layer keeps at least ``max(1, pruning.min_units)`` units. Removal
       priority is constants first (removing them is exact), then criterion units by score; the
       lowest-priority units are kept. So when every unit is dead, the constant unit with the lowest
       criterion score (ties: the highest index) survives. A layer already at or below the minimum
       loses nothing.
    5. With ``pruning.merge_linear``, the always-active units that are not removed are merge
       candidates, if there are at least 2 of them. With ``pruning.merge_tolerance > 0`` units
       inactive on at most that fraction of the measured outputs count as always active, and a
       single such unit that is not strictly always active is a candidate on its own (merging
       re-biases it so it is active on every measured input).

    A layer with no measured outputs gets an empty Selection under an activation criterion: nothing is
    known about its units (a weight criterion still applies, without constant folding).

    Args:
        stats: statistics by layer name; must cover every name in ``layers``.
        pruning: the pruning recipe.
        widths: current width of every layer in ``layers``.
        layers: the prunable layers to consider (``pruning.layers`` already applied by the caller).
        scores: measures by layer name replacing the statistics' own: weight measures
            (``worker.engine.weight_scores``), needed by the layers whose criterion reads weights.
            Default none.
        spec: the current architecture; needed with ``pruning.target``.
        baseline: cycle 0's architecture; needed with ``pruning.target``.
        step: the share of the full step to take, in (0, 1]. Default 1 (the full step).

    Returns:
        one Selection per name in ``layers``, in that order; ``remove``, ``constant`` (a subset of
        ``remove``) and ``merge`` are sorted int64 unit indices, empty when nothing.

    Raises:
        ValueError: a layer has no statistics or width, its statistics disagree with its width, a weight
            criterion has no scores, or a target is set without ``spec`` and ``baseline``.
    """
    verdicts: dict[str, Verdict] = {}
    importance: dict[str, FloatArray] = {}
    constants: dict[str, IndexArray] = {}
    chosen: dict[str, IndexArray] = {}
    caps: dict[str, int] = {}
    for name in layers:
        if name not in stats:
            raise ValueError(f"no activation statistics for layer '{name}'")
        if name not in widths:
            raise ValueError(f"no width for layer '{name}'")
        layer = stats[name]
        width = int(widths[name])
        if layer.units != width:
            raise ValueError(f"layer '{name}': statistics cover {layer.units} units but its width is {width}")
        criterion, max_fraction = pruning.rule_for(name)
        measured = layer.outputs > 0
        if not measured and criterion.source == "activations":
            continue
        values = measure_values(layer, criterion, scores)
        mask, score = criterion.verdict(values)
        verdict = Verdict(np.asarray(mask, dtype=np.bool_), _floats(score))
        constant = (
            constant_units(layer, pruning.constant_tolerance)
            if pruning.fold_constant and measured
            else np.zeros(width, dtype=np.bool_)
        )
        verdicts[name] = verdict
        if not isinstance(criterion, NoCriterion):
            importance[name] = _floats(criterion.importance(values))
        constants[name] = _ranked(_indices(constant), verdict.score)
        candidates = _ranked(_indices(verdict.mask & ~constant), verdict.score)
        caps[name] = removal_cap(max_fraction, width)
        chosen[name] = candidates[: caps[name]]

    if pruning.layers_per_cycle is not None:
        trimmed = [name for name in layers if name in chosen and chosen[name].size > 0]
        trimmed.sort(key=lambda name: -float(np.mean(stats[name].apoz)))  # stable: ties keep layer order
        for name in trimmed[pruning.layers_per_cycle :]:
            chosen[name] = _empty_index()

    if pruning.target is not None:
        if spec is None or baseline is None:
            raise ValueError("pruning.target needs the current and cycle 0's architectures")
        limits = {
            name: max(
                0, min(caps[name], int(widths[name]) - max(1, pruning.min_units) - constants[name].size)
            )
            for name in chosen
        }
        chosen = towards_target(pruning, spec, baseline, widths, constants, importance, limits)

    if step < 1.0:
        chosen = {name: units[: backed_off(units.size, step)] for name, units in chosen.items()}

    result: dict[str, Selection] = {}
    for name in layers:
        if name not in verdicts:
            result[name] = Selection(remove=_empty_index(), constant=_empty_index(), merge=_empty_index())
            continue
        layer = stats[name]
        width = int(widths[name])
        priority = np.concatenate([constants[name], chosen.get(name, _empty_index())])
        allowed = max(0, width - max(1, pruning.min_units))
        removed = priority[:allowed]
        folded = np.intersect1d(removed, constants[name]).astype(np.int64)
        merge = _empty_index()
        if pruning.merge_linear:
            nearly = always_active_units(layer, pruning.merge_tolerance)
            linear = np.setdiff1d(_indices(nearly), removed).astype(np.int64)
            strict = always_active_units(layer)
            if linear.size >= 2 or (linear.size == 1 and not strict[linear].all()):
                merge = _sorted(linear)
        result[name] = Selection(remove=_sorted(removed), constant=_sorted(folded), merge=merge)
    return result
