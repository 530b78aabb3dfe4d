"""Which units to remove: pruning criteria over activation statistics, and the per-cycle composer.

Every criterion is a pure function of one layer's :class:`LayerStats` that returns a :class:`Verdict`:
a boolean mask over the layer's units (True = remove) and a score for ranking (higher = remove
first). :func:`select_units` combines a criterion with the pruning recipe (the per-layer cap, the
minimum width, constant folding, Hu et al.'s layers-per-cycle rule and linear-unit merging) into one
:class:`Selection` per layer.

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

from prunespec.spec import (
    ActivationCountCriterion,
    ApozCriterion,
    CountBandCriterion,
    NoCriterion,
    PruningSpec,
    VarianceBandCriterion,
    VarianceCriterion,
)
from worker.engine.results import LayerStats, Selection

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.int64]

AnyCriterion = (
    ActivationCountCriterion
    | CountBandCriterion
    | ApozCriterion
    | VarianceCriterion
    | VarianceBandCriterion
    | NoCriterion
)

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
    """Çallı's activation count: remove units active (output > 0) on at most ``threshold`` outputs.

    Args:
        stats: the layer's statistics.
        threshold: largest activation count still removed; default 0 (units that were never active).

    Returns:
        mask ``active <= threshold``; score ``-active`` (the least active units go first).
    """
    active = _floats(stats.active)
    return Verdict(active <= threshold, -active)


def count_band(stats: LayerStats, k: float = 2.0) -> Verdict:
    """Çallı's count band: remove units whose activation count lies outside mean ± k·std of the layer.

    The standard deviation is the population one (``ddof=0``) over the layer's units; the band is
    closed, so a count on its edge stays.

    Args:
        stats: the layer's statistics.
        k: half-width of the band in standard deviations; default 2.

    Returns:
        mask ``|active − mean| > k·std``; score ``|active − mean| − k·std``, the distance outside the
        band (negative inside it).
    """
    counts = _floats(stats.active)
    if counts.size == 0:
        return Verdict(np.zeros(0, dtype=np.bool_), _floats([]))
    distance = np.abs(counts - counts.mean()) - k * counts.std()
    mask = distance > 0
    if np.ptp(counts) == 0:
        mask[:] = False
    return Verdict(mask, distance)


def apoz(stats: LayerStats, k: float = 1.0) -> Verdict:
    """Hu et al.'s network trimming: remove units whose APoZ exceeds mean(APoZ) + k·std(APoZ).

    The comparison is strict and the standard deviation is the population one over the layer's
    units, so when every unit has the same APoZ nothing is removed.

    Args:
        stats: the layer's statistics.
        k: how many standard deviations above the layer's mean APoZ a unit must be; default 1.

    Returns:
        mask ``apoz > mean + k·std``; score ``apoz``.
    """
    values = _floats(stats.apoz)
    if values.size == 0 or np.ptp(values) == 0:
        return Verdict(np.zeros(values.shape, dtype=np.bool_), values)
    return Verdict(values > values.mean() + k * values.std(), values)


def variance(stats: LayerStats, threshold: float = 1e-6) -> Verdict:
    """Çallı's variance criterion: remove units whose output variance is at most ``threshold``.

    Args:
        stats: the layer's statistics.
        threshold: largest variance still removed; default 1e-6.

    Returns:
        mask ``variance <= threshold``; score ``-variance`` (the flattest units go first).
    """
    values = _floats(stats.variance)
    return Verdict(values <= threshold, -values)


def variance_band(stats: LayerStats, k: float = 2.0) -> Verdict:
    """Çallı's autoencoder rule: remove units with mean(v) − k·var(v) < v < mean(v) + k·var(v).

    ``v`` are the layer's unit variances and ``var(v)`` is the (population) variance of those
    variances, as the thesis states; the band is open, so when all variances are equal it is empty and
    nothing is removed.

    Args:
        stats: the layer's statistics.
        k: half-width of the band in units of var(v); default 2.

    Returns:
        mask ``|v − mean(v)| < k·var(v)``; score ``−|v − mean(v)|`` (units nearest the mean go first).
    """
    values = _floats(stats.variance)
    if values.size == 0 or np.ptp(values) == 0:
        return Verdict(np.zeros(values.shape, dtype=np.bool_), np.zeros(values.shape, dtype=np.float64))
    centre = values.mean()
    spread = values.var()
    mask = (centre - k * spread < values) & (values < centre + k * spread)
    return Verdict(mask, -np.abs(values - centre))


def no_criterion(stats: LayerStats) -> Verdict:
    """Remove nothing.

    Args:
        stats: the layer's statistics (only its width is used).

    Returns:
        an all-False mask and an all-zero score.
    """
    return Verdict(np.zeros(stats.units, dtype=np.bool_), np.zeros(stats.units, dtype=np.float64))


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


def evaluate(stats: LayerStats, criterion: AnyCriterion) -> Verdict:
    """Apply a pruning spec's criterion to one layer.

    Args:
        stats: the layer's statistics.
        criterion: one of the criterion specs of ``prunespec.spec``.

    Returns:
        the criterion's Verdict.

    Raises:
        TypeError: ``criterion`` is not a known criterion spec.
    """
    if isinstance(criterion, ActivationCountCriterion):
        return activation_count(stats, criterion.threshold)
    if isinstance(criterion, CountBandCriterion):
        return count_band(stats, criterion.k)
    if isinstance(criterion, ApozCriterion):
        return apoz(stats, criterion.k)
    if isinstance(criterion, VarianceCriterion):
        return variance(stats, criterion.threshold)
    if isinstance(criterion, VarianceBandCriterion):
        return variance_band(stats, criterion.k)
    if isinstance(criterion, NoCriterion):
        return no_criterion(stats)
    raise TypeError(f"unknown pruning criterion {type(criterion).__name__}")


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
) -> dict[str, Selection]:
    """Choose the units every prunable layer loses this cycle.

    Per layer, in this order:

    1. Constant units (when ``pruning.fold_constant``; tolerance ``pruning.constant_tolerance``) are
       always selected, in every layer; they do not count against the cap.
    2. The criterion's other units are ranked by score (ties: lower index first) and capped at
       ``max(1, floor(pruning.max_fraction · width))``.
    3. With ``pruning.layers_per_cycle = N``, only the N layers with the highest mean APoZ among those
       where step 2 left something keep their criterion selection (ties: order of ``layers``).
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

    A layer with no measured outputs gets an empty Selection: nothing is known about its units.

    Args:
        stats: statistics by layer name; must cover every name in ``layers``.
        pruning: the pruning recipe.
        widths: current width of every layer in ``layers``.
        layers: the prunable layers to consider (``pruning.layers`` already applied by the caller).

    Returns:
        one Selection per name in ``layers``, in that order; ``remove``, ``constant`` (a subset of
        ``remove``) and ``merge`` are sorted int64 unit indices, empty when nothing.

    Raises:
        ValueError: a layer has no statistics or width, or its statistics disagree with its width.
    """
    verdicts: dict[str, Verdict] = {}
    constants: dict[str, IndexArray] = {}
    chosen: dict[str, IndexArray] = {}
    for name in layers:
        if name not in stats:
            raise ValueError(f"no activation statistics for layer '{name}'")
        if name not in widths:
            raise ValueError(f"no width for layer '{name}'")
        layer = stats[name]
        width = int(widths[name])
        if layer.units != width:
            raise ValueError(f"layer '{name}': statistics cover {layer.units} units but its width is {width}")
        if layer.outputs <= 0:
            continue
        verdict = evaluate(layer, pruning.criterion)
        constant = (
            constant_units(layer, pruning.constant_tolerance)
            if pruning.fold_constant
            else np.zeros(width, dtype=np.bool_)
        )
        verdicts[name] = verdict
        constants[name] = _ranked(_indices(constant), verdict.score)
        candidates = _ranked(_indices(verdict.mask & ~constant), verdict.score)
        chosen[name] = candidates[: removal_cap(pruning.max_fraction, width)]

    if pruning.layers_per_cycle is not None:
        trimmed = [name for name in layers if name in chosen and chosen[name].size > 0]
        trimmed.sort(key=lambda name: -float(np.mean(stats[name].apoz)))  # stable: ties keep layer order
        for name in trimmed[pruning.layers_per_cycle :]:
            chosen[name] = _empty_index()

    result: dict[str, Selection] = {}
    for name in layers:
        if name not in verdicts:
            result[name] = Selection(remove=_empty_index(), constant=_empty_index(), merge=_empty_index())
            continue
        layer = stats[name]
        width = int(widths[name])
        priority = np.concatenate([constants[name], chosen[name]])
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
