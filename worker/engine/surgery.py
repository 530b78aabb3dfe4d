"""Physically remove channels from a model, group by group, copying every surviving weight exactly.

Removing channel u of a dependency group (``prunespec.groups``) slices u out of every producer's
kernel and bias, out of every member's per-channel weights (batch norm parameters, depthwise kernel
and bias; behind a flatten at every position) and out of every consumer's input dimension (at the
group's offset in a concatenation, position-major behind a flatten). All of it happens on NumPy
copies of the weights; the smaller model is then built from the smaller spec and loaded with them.

Two removals keep the model's outputs unchanged on the measured data:

* Constant channels. A channel whose measured value is constant (a dead ReLU is 0) adds a fixed
  amount to every consumer's pre-activation; the constants measured at the group's probes are carried
  through its members to each consumer's input (``worker.engine.folding``) and that amount goes into
  the consumer's bias (a bias is added where there is none). Exact where the consumer sees the same
  value at every position: dense layers, and convolutions away from zero-padded borders.
* Always-active dense ReLU units (``merge``; sequential groups of one dense producer feeding one dense
  consumer). On inputs where a ReLU unit is active it is linear, so a set A of such units contributes
  ``x·W_A·V_A + b_A·V_A`` to the consumer. ``W_A·V_A`` has rank r ≤ min(inputs, consumer width); its SVD
  gives r new units whose biases are raised until they are active on every measured input, and the
  consumer's bias absorbs the difference. Exact on the measured inputs. Units that are only nearly
  always active (``PruningSpec.merge_tolerance``) merge the same way; the result then differs on the
  few inputs where they were inactive, where it continues their linear part.

Merges come first, then every group's constants are folded, then every layer is sliced once, so the
groups of a graph (a layer may consume one group and produce another) never see each other's cuts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import keras
import numpy as np

from prunespec.groups import Group, Layout, dependency_groups, layer_inputs, tensor_layouts
from prunespec.layers import ModelSpec
from prunespec.spec import TrainingSpec
from worker.engine.build import build_model, layer_weights, set_layer_weights
from worker.engine.folding import BIAS_INDEX, ConstantPropagation, channel_indices, consumer_delta

Weights = dict[str, list[np.ndarray]]

#: A merged unit's bias puts its smallest measured pre-activation this fraction of the pre-activations'
#: spread above zero. The bias of a lone linear unit is a flat direction of the loss (the next layer's
#: bias absorbs any shift), so retraining lets it drift; with a 1% margin the summation net's single
#: unit drifted back into the data corner within a cycle, with 10% it stays active on held-out data.
MERGE_MARGIN = 0.1

#: Per layer type, weight index -> axis of the layer's output channels (producers).
OUTPUT_AXES = {
    "dense": {0: 1, 1: 0},
    "conv2d": {0: 3, 1: 0},
    "conv2d_transpose": {0: 2, 1: 0},
    "separable_conv2d": {1: 3, 2: 0},
}
#: Per layer type, weight index -> axis of the layer's input channels (consumers).
INPUT_AXES = {
    "dense": {0: 0},
    "conv2d": {0: 2},
    "conv2d_transpose": {0: 3},
    "separable_conv2d": {0: 2, 1: 2},
}
#: Per layer type, weight index -> axis of the channels a member carries through.
MEMBER_AXES = {"batch_norm": {0: 0, 1: 0, 2: 0, 3: 0}, "depthwise_conv2d": {0: 2, 1: 0}}


@dataclass(frozen=True)
class LayerPlan:
    """What to do to one prunable group.

    Attributes:
        remove: channel indices to delete.
        constants: for removed channels whose output is constant, channel index -> that constant at
            the group's primary probe.
        merge: always-active unit indices to merge (a dense ReLU group feeding a dense layer only).
        probe_constants: per probe of the group, channel index -> the constant measured there;
            needed for groups with several probes (the primary one defaults to ``constants``).
    """

    remove: Sequence[int] = ()
    constants: Mapping[int, float] | None = None
    merge: Sequence[int] = ()
    probe_constants: Mapping[str, Mapping[int, float]] | None = None


def can_merge(spec: ModelSpec, group: Group) -> bool:
    """Whether a group's always-active units can be merged: one dense ReLU producer measured at its
    own output, feeding one dense layer directly or through dropout."""
    layers = {layer.key: layer for layer in spec.layers}
    producer = layers[group.producers[0]]
    return (
        len(group.producers) == 1
        and producer.type == "dense"
        and getattr(producer, "activation", None) == "relu"
        and group.probes[0] == group.producers[0]
        and all(layers[m].type == "dropout" for m in group.members)
        and len(group.consumers) == 1
        and group.consumers[0].offset == 0
        and group.consumers[0].flatten is None
        and layers[group.consumers[0].layer].type == "dense"
    )


class _Editor:
    """Applies every group's plan to the weights dict: merges, then folds, then slices."""

    def __init__(self, spec: ModelSpec, weights: Weights):
        self.spec = spec
        self.weights = weights
        self.layouts: dict[str, Layout] = tensor_layouts(spec)
        self.inputs = layer_inputs(spec)
        self.layers = {layer.key: layer for layer in spec.layers}
        self.remove_out: dict[str, set[int]] = {}
        self.remove_in: dict[str, set[int]] = {}
        self.add_bias: set[str] = set()

    def width(self, group: Group) -> int:
        producer = group.producers[0]
        kind = self.layers[producer].type
        index, axis = next(iter(OUTPUT_AXES[kind].items()))
        return int(self.weights[producer][index].shape[axis])

    def _bias(self, name: str, outputs: int, dtype: np.dtype) -> np.ndarray:
        """The layer's bias, added (zeros) when it has none."""
        params = self.weights[name]
        index = BIAS_INDEX[self.layers[name].type]
        if len(params) <= index:
            params.append(np.zeros(outputs, dtype=dtype))
            self.add_bias.add(name)
        return params[index]

    def _add_to_bias(self, name: str, delta: np.ndarray) -> None:
        if not np.any(delta):
            return
        kernel = self.weights[name][0]
        bias = self._bias(name, delta.shape[0], kernel.dtype)
        self.weights[name][BIAS_INDEX[self.layers[name].type]] = (bias + delta).astype(kernel.dtype)

    def merge(self, group: Group, merge: np.ndarray, layer_input: np.ndarray) -> np.ndarray:
        """Replace (nearly) always-active units by rank(W_A·V_A) units active on every input in
        ``layer_input``; returns the indices of the new units (none when nothing would change)."""
        name, consumer = group.producers[0], group.consumers[0].layer
        kernel, bias = self.weights[name][:2]
        next_params = self.weights[consumer]
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
        self._add_to_bias(consumer, b_a @ v_a - new_bias @ new_out)
        dtype = kernel.dtype
        units = kernel.shape[1]
        self.weights[name][0] = np.concatenate([kernel, new_in.astype(dtype)], axis=1)
        self.weights[name][1] = np.concatenate([bias, new_bias.astype(dtype)])
        next_params[0] = np.concatenate([next_params[0], new_out.astype(dtype)], axis=0)
        return np.arange(units, units + rank, dtype=np.int64)

    def fold(self, group: Group, plan: LayerPlan, removed: set[int]) -> None:
        """Fold the removed constant channels of a group into its consumers' biases."""
        folded = sorted(u for u in (plan.constants or {}) if u in removed)
        if not folded:
            return
        width = self.width(group)
        at_probes: dict[str, np.ndarray] = {}
        given = dict(plan.probe_constants or {})
        if plan.constants is not None:
            given.setdefault(group.probes[0], plan.constants)
        for probe, constants in given.items():
            values = np.zeros(width, dtype=np.float64)
            for unit, constant in constants.items():
                values[int(unit)] = constant
            at_probes[probe] = values
        mask = np.zeros(width, dtype=bool)
        mask[folded] = True
        inputs = ConstantPropagation(self.spec, self.weights, self.layouts, group).consumer_inputs(at_probes)
        for consumer in group.consumers:
            value = np.where(mask[None, :], inputs[consumer.layer], 0.0)
            rows = channel_indices(
                self.layouts[self.inputs[consumer.layer][0]], group.name, np.arange(width), consumer.offset
            )
            layer = self.layers[consumer.layer]
            self._add_to_bias(
                consumer.layer, consumer_delta(layer, self.weights[consumer.layer], value, rows)
            )

    def mark(self, group: Group, removed: set[int]) -> None:
        """Record the channels to slice out of every producer, member and consumer of a group."""
        channels = np.array(sorted(removed), dtype=np.int64)
        for producer in group.producers:
            self.remove_out.setdefault(producer, set()).update(channels.tolist())
        for member in group.members:
            if self.layers[member].type in MEMBER_AXES:
                index = channel_indices(self.layouts[member], group.name, channels)
                self.remove_out.setdefault(member, set()).update(index.reshape(-1).tolist())
        for consumer in group.consumers:
            layout = self.layouts[self.inputs[consumer.layer][0]]
            index = channel_indices(layout, group.name, channels, consumer.offset)
            self.remove_in.setdefault(consumer.layer, set()).update(index.reshape(-1).tolist())

    def slice(self) -> None:
        """Cut every marked channel out of every layer's weights, once per layer and axis."""
        for name, params in self.weights.items():
            kind = self.layers[name].type if name in self.layers else ""
            for removal, axes in (
                (self.remove_out.get(name), OUTPUT_AXES.get(kind) or MEMBER_AXES.get(kind, {})),
                (self.remove_in.get(name), INPUT_AXES.get(kind, {})),
            ):
                if not removal:
                    continue
                for index, axis in axes.items():
                    if index < len(params):
                        keep = np.setdiff1d(np.arange(params[index].shape[axis]), sorted(removal))
                        params[index] = np.take(params[index], keep, axis=axis)


def prune(
    model: keras.Model,
    spec: ModelSpec,
    plans: Mapping[str, LayerPlan],
    *,
    training: TrainingSpec | None = None,
    prunable: Sequence[str] | None = None,
    layer_inputs: Mapping[str, np.ndarray] | None = None,
) -> tuple[keras.Model, ModelSpec]:
    """A new, smaller model without the planned channels.

    Args:
        model: the trained model, built from ``spec``.
        spec: its architecture.
        plans: per prunable group name, what to remove, fold and merge. Groups not named are kept whole.
        training: penalties for the new model (as ``build_model``). Default None.
        prunable: layer names that carry the unit penalties (as ``build_model``). Default all prunable.
        layer_inputs: per group name, the inputs its producer saw on the measured data; needed only
            for ``merge``. Default None (no merging).

    Returns:
        (new model, new spec). The new model is uncompiled; the old one is not modified.

    Raises:
        ValueError: a plan names a group that is not prunable, a channel out of range, or every channel.
    """
    groups = {group.name: group for group in dependency_groups(spec) if group.fixed is None}
    unknown = set(plans) - set(groups)
    if unknown:
        raise ValueError(f"not prunable layers: {sorted(unknown)}; prunable: {list(groups)}")
    editor = _Editor(spec, layer_weights(model))
    removals: dict[str, set[int]] = {}
    for name, plan in plans.items():
        width = editor.width(groups[name])
        out_of_range = [u for u in plan.remove if not 0 <= u < width]
        if out_of_range:
            raise ValueError(f"layer '{name}' has {width} units; cannot remove {out_of_range}")
        removals[name] = {int(u) for u in plan.remove}
        merge = np.array(sorted(set(plan.merge) - removals[name]), dtype=np.int64)
        layer_input = (layer_inputs or {}).get(name)
        if len(merge) >= 1 and layer_input is not None and can_merge(spec, groups[name]):
            if len(editor.merge(groups[name], merge, layer_input)):
                removals[name] |= {int(u) for u in merge}
        if len(removals[name]) >= editor.width(groups[name]):
            raise ValueError(f"layer '{name}': cannot remove every unit")
    for name, plan in plans.items():
        editor.fold(groups[name], plan, removals[name])
    new_widths: dict[str, int] = {}
    for name in plans:
        group = groups[name]
        width = editor.width(group) - len(removals[name])
        editor.mark(group, removals[name])
        new_widths.update(dict.fromkeys(group.producers, width))
    editor.slice()
    new_spec = spec.with_widths(new_widths)
    for name in editor.add_bias:
        new_spec = new_spec.with_layer(new_spec.layer_names().index(name), use_bias=True)
    new_model = build_model(new_spec, training, prunable)
    set_layer_weights(new_model, editor.weights)
    return new_model, new_spec
