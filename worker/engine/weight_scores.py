"""Per-unit scores read from a model's weights, for the criteria whose ``source`` is "weights".

``bn_scale`` (Liu et al. 2017, Network Slimming): |γ| of the batch norm right after the unit's producer.
``weight_norm`` (Li et al. 2017): the L1 or L2 norm of the unit's incoming weights (a dense unit's
column, a convolution filter's kernel slice; the pointwise kernel of a separable convolution).

A dependency group with several producers gets one score per producer, aggregated per channel by
``pruning.group_score`` (mean, max or sum).

Keras + NumPy only; the criteria's rules live in ``prunespec.criteria``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
import numpy as np

from prunespec.criteria import BnScaleCriterion, CriterionBase, WeightNormCriterion, bn_after
from prunespec.layers import ModelSpec
from prunespec.spec import PruningSpec
from worker.engine.arrays import FloatArray
from worker.engine.criteria import aggregate

#: Axis of a kernel that indexes the layer's output units, by layer type.
_UNIT_AXIS = {"dense": 1, "conv2d": 3, "conv2d_transpose": 2, "separable_conv2d": 3}


def bn_scale(model: keras.Model, spec: ModelSpec, producer: str) -> FloatArray:
    """|γ| of the batch norm right after ``producer``, per channel.

    Args:
        model: the trained model (layers named as in ``spec``).
        spec: its architecture.
        producer: the layer whose output channels are scored.

    Returns:
        (channels,) float64.

    Raises:
        ValueError: no batch norm after the layer, or one without a scale.
    """
    norm = bn_after(spec, producer)
    if norm is None:
        raise ValueError(f"layer '{producer}': criterion bn_scale needs a batch_norm right after it")
    layer = model.get_layer(norm)
    gamma = getattr(layer, "gamma", None)
    if gamma is None:
        raise ValueError(f"layer '{producer}': its batch_norm '{norm}' has no scale γ")
    return np.abs(np.asarray(keras.ops.convert_to_numpy(gamma), dtype=np.float64))


def weight_norm(model: keras.Model, spec: ModelSpec, producer: str, norm: str = "l1") -> FloatArray:
    """The L1 or L2 norm of each output unit's incoming weights of ``producer``.

    Args:
        model: the trained model.
        spec: its architecture.
        producer: a dense or convolution layer.
        norm: "l1" (sum of |w|) or "l2" (square root of the sum of w²). Default "l1".

    Returns:
        (units,) float64.

    Raises:
        ValueError: the layer has no kernel to score.
    """
    kind = spec.layers[spec.layer_names().index(producer)].type
    if kind not in _UNIT_AXIS:
        raise ValueError(f"layer '{producer}': criterion weight_norm cannot score a {kind} layer")
    layer = model.get_layer(producer)
    kernel = getattr(layer, "pointwise_kernel", None)
    kernel = getattr(layer, "kernel", None) if kernel is None else kernel
    if kernel is None:
        raise ValueError(f"layer '{producer}': no kernel to score")
    weights = np.asarray(keras.ops.convert_to_numpy(kernel), dtype=np.float64)
    units = np.moveaxis(weights, _UNIT_AXIS[kind], 0).reshape(weights.shape[_UNIT_AXIS[kind]], -1)
    if norm == "l2":
        return np.asarray(np.sqrt(np.sum(units**2, axis=1)), dtype=np.float64)
    return np.asarray(np.sum(np.abs(units), axis=1), dtype=np.float64)


def unit_score(model: keras.Model, spec: ModelSpec, producer: str, criterion: CriterionBase) -> FloatArray:
    """One producer's weight score for a weight criterion.

    Raises:
        ValueError: ``criterion`` does not read weights, or the layer cannot be scored.
    """
    if isinstance(criterion, BnScaleCriterion):
        return bn_scale(model, spec, producer)
    if isinstance(criterion, WeightNormCriterion):
        return weight_norm(model, spec, producer, criterion.norm)
    raise ValueError(f"criterion {criterion.measure} does not read weights")


def weight_scores(
    model: keras.Model,
    spec: ModelSpec,
    layers: Sequence[str],
    pruning: PruningSpec,
    producers: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, FloatArray]:
    """Weight scores of every pruned layer (group) whose criterion reads weights.

    Args:
        model: the trained model.
        spec: its architecture.
        layers: the pruned layers (groups) by name.
        pruning: the recipe (its rules choose each layer's criterion; ``group_score`` aggregates).
        producers: the producer layers of each group; default: each layer is its own producer.

    Returns:
        (units,) scores by layer (group) name; layers with activation criteria are left out.

    Raises:
        ValueError: naming a layer that cannot be scored.
    """
    out: dict[str, FloatArray] = {}
    for name in layers:
        criterion, _ = pruning.rule_for(name)
        if criterion.source != "weights":
            continue
        members = list((producers or {}).get(name, (name,)))
        if isinstance(criterion, BnScaleCriterion):
            # in a group, the producers without a batch norm after them (a squeeze-excitation's gate
            # feeding a multiply) carry no γ: the others' scale the channel; the first one must have one
            members = [members[0], *(p for p in members[1:] if bn_after(spec, p) is not None)]
        out[name] = aggregate([unit_score(model, spec, p, criterion) for p in members], pruning.group_score)
    return out
