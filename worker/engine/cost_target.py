"""The cost target (``pruning.target``): the cycle's cost goal, and the least important units that reach it.

A target asks for a model at ``fraction`` of cycle 0's FLOPs or parameters after ``max_cycles`` cycles;
every cycle shrinks the cost by the same ratio (:func:`cost_goal`), and :func:`towards_target` picks
the fewest units of lowest normalised importance, across all layers, that bring the cost to it.

Pure NumPy: this module never imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from prunespec.costs import model_cost
from prunespec.groups import with_group_widths
from prunespec.layers import ModelSpec
from prunespec.spec import PruningSpec
from worker.engine.arrays import FloatArray, IndexArray


def _cost(spec: ModelSpec, kind: str) -> int:
    cost = model_cost(spec)
    return int(cost.flops if kind == "flops" else cost.params)


def cost_goal(pruning: PruningSpec, spec: ModelSpec, baseline: ModelSpec) -> float:
    """The most the model may cost after this cycle's removal under ``pruning.target``.

    ``max(f · cost₀, cost · f^(1/(max_cycles − 1)))``: every cycle shrinks the cost by the same ratio, so
    after the ``max_cycles − 1`` pruning steps the model is at ``f`` of cycle 0's cost, never below.

    Args:
        pruning: the recipe (its ``target`` set).
        spec: the current architecture.
        baseline: cycle 0's architecture.

    Returns:
        the cost goal, in FLOPs or parameters.

    Raises:
        ValueError: no target.
    """
    target = pruning.target
    if target is None:
        raise ValueError("pruning has no target")
    steps = max(1, pruning.max_cycles - 1)
    floor = target.fraction * _cost(baseline, target.kind)
    return max(floor, _cost(spec, target.kind) * target.fraction ** (1.0 / steps))


def towards_target(
    pruning: PruningSpec,
    spec: ModelSpec,
    baseline: ModelSpec,
    widths: Mapping[str, int],
    constants: Mapping[str, IndexArray],
    importance: Mapping[str, FloatArray],
    limits: Mapping[str, int],
) -> dict[str, IndexArray]:
    """The fewest least-important units (within each layer's limit) that bring the cost to the goal."""
    assert pruning.target is not None
    kind = pruning.target.kind
    goal = cost_goal(pruning, spec, baseline)
    order = list(importance)
    layer_of: list[int] = []
    unit_of: list[int] = []
    value_of: list[float] = []
    for position, name in enumerate(order):
        skip = set(constants[name].tolist())
        for unit, value in enumerate(importance[name].tolist()):
            if unit not in skip:
                layer_of.append(position)
                unit_of.append(unit)
                value_of.append(value)
    ranked = np.lexsort((np.asarray(unit_of), np.asarray(layer_of), np.asarray(value_of)))
    taken = dict.fromkeys(order, 0)
    eligible: list[tuple[str, int]] = []
    for i in ranked.tolist():
        name = order[layer_of[i]]
        if taken[name] < limits.get(name, 0):
            taken[name] += 1
            eligible.append((name, unit_of[i]))
    allowed = {name: max(0, int(widths[name]) - max(1, pruning.min_units)) for name in constants}

    def cost_after(count: int) -> int:
        lost = {name: min(allowed[name], constants[name].size) for name in constants}
        for name, _ in eligible[:count]:
            lost[name] += 1
        return _cost(with_group_widths(spec, {n: int(widths[n]) - k for n, k in lost.items() if k}), kind)

    low, high = 0, len(eligible)
    if cost_after(high) > goal:
        low = high
    while low < high:
        middle = (low + high) // 2
        if cost_after(middle) <= goal:
            high = middle
        else:
            low = middle + 1
    picks: dict[str, list[int]] = {name: [] for name in constants}
    for name, unit in eligible[:low]:
        picks[name].append(unit)
    return {name: np.asarray(units, dtype=np.int64) for name, units in picks.items()}
