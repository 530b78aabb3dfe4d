"""Physically remove units and channels from a model, copying every surviving weight exactly.

Removing unit u of a prunable layer L slices u out of L's kernel and bias, out of every BatchNorm
between L and the next weighted layer N (through pooling and Flatten), and out of N's input dimension.
All of it happens on NumPy copies of the weights; the smaller model is then built from the smaller
spec and loaded with them.

Two removals keep the model's outputs unchanged on the measured data:

* Constant units. A unit whose measured output is the constant c (a dead ReLU has c = 0) adds a
  fixed amount to N's pre-activation; that amount goes into N's bias (a bias is added to N if it has
  none). It is exact where N sees the same contribution at every position: dense layers and
  convolutions away from padded borders; at the borders of a 'same' convolution and for the uneven
  overlap of a strided transposed convolution the folded value is the interior (mean) one.
* Always-active dense ReLU units (``merge``). On inputs where a ReLU unit is active it is linear, so
  a set A of such units contributes ``x·W_A·V_A + b_A·V_A`` to N. ``W_A·V_A`` has rank r ≤ min(inputs,
  N's width); its SVD gives r new units whose biases are raised until they are active on every
  measured input, and N's bias absorbs the difference. Exact on the measured inputs. Units that are
  only nearly always active (``PruningSpec.merge_tolerance``) merge the same way; the result then
  differs on the few inputs where they were inactive, where it continues their linear part.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import keras
import numpy as np

from prunespec.layers import (
    ActivationLayer,
    BatchNormLayer,
    Conv2DTransposeLayer,
    DenseLayer,
    DropoutLayer,
    FlattenLayer,
    ModelSpec,
)
from prunespec.spec import TrainingSpec
from worker.engine.build import INPUT_AXIS, UNIT_AXIS, build_model, layer_weights, set_layer_weights
from worker.engine.topology import UnitBlock, probe_activation, unit_blocks

Weights = dict[str, list[np.ndarray]]

#: A merged unit's bias puts its smallest measured pre-activation this fraction of the pre-activations'
#: spread above zero. The bias of a lone linear unit is a flat direction of the loss (the next layer's
#: bias absorbs any shift), so retraining lets it drift; with a 1% margin the summation net's single
#: unit drifted back into the data corner within a cycle, with 10% it stays active on held-out data.
MERGE_MARGIN = 0.1


@dataclass(frozen=True)
class LayerPlan:
    """What to do to one prunable layer.

    Attributes:
        remove: unit indices to delete.
        constants: for removed units whose output is constant, unit index -> that constant.
        merge: always-active unit indices to merge (dense ReLU feeding a dense layer only).
    """

    remove: Sequence[int] = ()
    constants: Mapping[int, float] | None = None
    merge: Sequence[int] = ()


def _activate(values: np.ndarray, activation: str) -> np.ndarray:
    if activation == "relu":
        return np.maximum(values, 0.0)
    if activation == "tanh":
        return np.tanh(values)
    if activation == "sigmoid":
        return 1.0 / (1.0 + np.exp(-values))
    return values


def _batch_norm(values: np.ndarray, params: list[np.ndarray], epsilon: float) -> np.ndarray:
    gamma, beta, mean, variance = params
    return (values - mean) / np.sqrt(variance + epsilon) * gamma + beta


def _slice_batch_norm(params: list[np.ndarray], keep: np.ndarray) -> list[np.ndarray]:
    return [p[keep] for p in params]


def _flat_keep(shape: tuple[int, ...], keep: np.ndarray) -> np.ndarray:
    """Flattened (channels-last) positions of the kept channels of a (h, w, c) tensor."""
    channels = shape[-1]
    positions = int(np.prod(shape[:-1]))
    return (np.arange(positions)[:, None] * channels + keep[None, :]).reshape(-1)


class _LayerEditor:
    """Applies one layer's plan to the weights dict, in model order."""

    def __init__(self, spec: ModelSpec, weights: Weights):
        self.spec = spec
        self.weights = weights
        self.shapes = spec.shapes
        self.new_widths: dict[str, int] = {}
        self.add_bias: set[str] = set()

    def _propagate_constants(self, block: UnitBlock, constants: np.ndarray) -> np.ndarray:
        """Per-channel constants at the probe carried to the next weighted layer's input."""
        values = constants
        for i in block.following:
            layer = self.spec.layers[i]
            if i <= block.probe:
                continue
            if isinstance(layer, BatchNormLayer):
                values = _batch_norm(values, self.weights[layer.name or ""], layer.epsilon)
            elif isinstance(layer, ActivationLayer):
                values = _activate(values, layer.activation)
            elif isinstance(layer, FlattenLayer):
                values = np.tile(values, int(np.prod(self.shapes[i - 1][:-1])))
            # pooling and dropout (inference) leave a constant channel constant
        return values

    def _slice(self, block: UnitBlock, keep: np.ndarray) -> None:
        layer = self.spec.layers[block.index]
        name = layer.name or ""
        params = self.weights[name]
        params[0] = np.take(params[0], keep, axis=UNIT_AXIS[layer.type])
        if len(params) > 1:
            params[1] = params[1][keep]
        flat_keep = keep
        for i in block.following:
            following = self.spec.layers[i]
            if isinstance(following, FlattenLayer):
                flat_keep = _flat_keep(self.shapes[i - 1], keep)
            elif isinstance(following, BatchNormLayer):
                self.weights[following.name or ""] = _slice_batch_norm(
                    self.weights[following.name or ""], flat_keep
                )
        next_layer = self.spec.layers[block.next_index]
        next_params = self.weights[next_layer.name or ""]
        next_params[0] = np.take(next_params[0], flat_keep, axis=INPUT_AXIS[next_layer.type])
        self.new_widths[name] = int(len(keep))

    def _merge(self, block: UnitBlock, merge: np.ndarray, layer_input: np.ndarray) -> np.ndarray:
        """Replace (nearly) always-active units by rank(W_A·V_A) units active on every input in
        ``layer_input``; returns the indices of the new units (none when nothing would change)."""
        layer = self.spec.layers[block.index]
        next_layer = self.spec.layers[block.next_index]
        kernel, bias = self.weights[layer.name or ""][:2]
        next_params = self.weights[next_layer.name or ""]
        w_a = kernel[:, merge].astype(np.float64)
        b_a = bias[merge].astype(np.float64)
        v_a = next_params[0][merge, :].astype(np.float64)
        u, s, vt = np.linalg.svd(w_a @ v_a, full_matrices=False)
        rank = int(np.sum(s > max(s[0], 1e-30) * 1e-7)) if s.size else 0
        inputs = layer_input.reshape(len(layer_input), -1).astype(np.float64)
        if rank >= len(merge) and bool(np.all(inputs @ w_a + b_a > 0)):
            return np.zeros(0, dtype=np.int64)  # already as few units as the rank, all linear here
        root = np.sqrt(s[:rank])
        new_in = u[:, :rank] * root
        new_out = root[:, None] * vt[:rank]
        pre = inputs @ new_in
        spread = pre.max(axis=0) - pre.min(axis=0)
        new_bias = -pre.min(axis=0) + MERGE_MARGIN * spread + 1e-3
        offset = b_a @ v_a - new_bias @ new_out
        if len(next_params) == 1:
            next_params.append(np.zeros(next_params[0].shape[1], dtype=next_params[0].dtype))
            self.add_bias.add(next_layer.name or "")
        next_params[1] = (next_params[1] + offset).astype(next_params[1].dtype)
        dtype = kernel.dtype
        units = kernel.shape[1]
        self.weights[layer.name or ""][0] = np.concatenate([kernel, new_in.astype(dtype)], axis=1)
        self.weights[layer.name or ""][1] = np.concatenate([bias, new_bias.astype(dtype)])
        next_params[0] = np.concatenate([next_params[0], new_out.astype(dtype)], axis=0)
        return np.arange(units, units + rank, dtype=np.int64)

    def apply(self, block: UnitBlock, plan: LayerPlan, layer_input: np.ndarray | None) -> None:
        layer = self.spec.layers[block.index]
        width = int(self.weights[layer.name or ""][0].shape[UNIT_AXIS[layer.type]])
        remove = {int(u) for u in plan.remove}
        if plan.constants:
            full = np.zeros(width, dtype=np.float64)
            for unit, value in plan.constants.items():
                full[unit] = value
            # Only the removed constant units contribute; the others stay in the model.
            mask = np.zeros(width, dtype=bool)
            mask[[u for u in plan.constants if u in remove]] = True
            self._fold_masked(block, full, mask)
        merge = np.array(sorted(set(plan.merge) - remove), dtype=np.int64)
        if len(merge) >= 1 and layer_input is not None and can_merge(self.spec, block):
            added = self._merge(block, merge, layer_input)
            if len(added):
                remove |= {int(u) for u in merge}
                width += len(added)
        keep = np.array([u for u in range(width) if u not in remove], dtype=np.int64)
        if len(keep) == 0:
            raise ValueError(f"layer '{layer.name}': cannot remove every unit")
        self._slice(block, keep)

    def _fold_masked(self, block: UnitBlock, constants: np.ndarray, mask: np.ndarray) -> None:
        """Fold the constants of the masked (removed) units into the next layer's bias.

        Each channel flows through the layers up to the next weighted layer on its own, so carrying
        every constant along and keeping only the removed units' entries gives their exact inputs.
        """
        if not mask.any():
            return
        values = self._propagate_constants(block, constants)
        removed = np.resize(mask, values.shape[0])  # Flatten is position-major, channel-minor
        self._fold_values(block, np.where(removed, values, 0.0))

    def _fold_values(self, block: UnitBlock, values: np.ndarray) -> None:
        next_layer = self.spec.layers[block.next_index]
        name = next_layer.name or ""
        kernel = self.weights[name][0]
        if isinstance(next_layer, DenseLayer):
            delta = values @ kernel
        elif isinstance(next_layer, Conv2DTransposeLayer):
            sh, sw = next_layer.strides
            delta = np.einsum("hwoi,i->o", kernel, values) / (sh * sw)
        else:
            delta = np.einsum("hwio,i->o", kernel, values)
        if not np.any(delta):
            return
        if len(self.weights[name]) == 1:
            self.weights[name].append(np.zeros(kernel.shape[UNIT_AXIS[next_layer.type]], dtype=kernel.dtype))
            self.add_bias.add(name)
        self.weights[name][1] = (self.weights[name][1] + delta).astype(kernel.dtype)


def can_merge(spec: ModelSpec, block: UnitBlock) -> bool:
    """Whether a layer's always-active units can be merged: a dense ReLU layer measured at its own
    output and feeding a dense layer through nothing but dropout."""
    layer = spec.layers[block.index]
    between = [spec.layers[i] for i in block.following]
    return (
        isinstance(layer, DenseLayer)
        and block.probe == block.index
        and probe_activation(spec, block) == "relu"
        and all(isinstance(x, DropoutLayer) for x in between)
        and isinstance(spec.layers[block.next_index], DenseLayer)
    )


def prune(
    model: keras.Model,
    spec: ModelSpec,
    plans: Mapping[str, LayerPlan],
    *,
    training: TrainingSpec | None = None,
    prunable: Sequence[str] | None = None,
    layer_inputs: Mapping[str, np.ndarray] | None = None,
) -> tuple[keras.Model, ModelSpec]:
    """A new, smaller model without the planned units.

    Args:
        model: the trained model, built from ``spec``.
        spec: its architecture.
        plans: per prunable layer name, what to remove, fold and merge. Layers not named are kept whole.
        training: penalties for the new model (as ``build_model``). Default None.
        prunable: layer names that carry the unit penalties (as ``build_model``). Default all prunable.
        layer_inputs: per layer name, the inputs that layer saw on the measured data; needed only
            for ``merge``. Default None (no merging).

    Returns:
        (new model, new spec). The new model is uncompiled; the old one is not modified.

    Raises:
        ValueError: a plan names a layer that is not prunable, a unit out of range, or every unit.
    """
    blocks = unit_blocks(spec)
    unknown = set(plans) - set(blocks)
    if unknown:
        raise ValueError(f"not prunable layers: {sorted(unknown)}; prunable: {list(blocks)}")
    weights = layer_weights(model)
    editor = _LayerEditor(spec, weights)
    for name, block in blocks.items():
        plan = plans.get(name)
        if plan is None:
            continue
        layer = spec.layers[block.index]
        width = int(weights[name][0].shape[UNIT_AXIS[layer.type]])
        out_of_range = [u for u in plan.remove if not 0 <= u < width]
        if out_of_range:
            raise ValueError(f"layer '{name}' has {width} units; cannot remove {out_of_range}")
        editor.apply(block, plan, (layer_inputs or {}).get(name))
    new_spec = spec.with_widths(editor.new_widths)
    for name in editor.add_bias:
        new_spec = new_spec.with_layer(new_spec.layer_names().index(name), use_bias=True)
    new_model = build_model(new_spec, training, prunable)
    set_layer_weights(new_model, weights)
    return new_model, new_spec
