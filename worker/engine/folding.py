"""Where removed constant channels go: their values carried through a group to its consumers' biases.

A channel that is constant on the measured data (a dead ReLU is constant 0) can leave the model if
every layer reading it gets the same contribution from a bias instead. The measured constants at a
group's probes are carried forward, channel by channel, through the group's members (batch norm,
activations, dropout, pooling, padding, upsampling, global pooling, depthwise convolutions, add,
multiply, concatenate, flatten) to every consumer's input, and the consumer's response to them is
added to its bias.

It is exact where a consumer sees the same value at every position: dense layers, and convolutions
away from zero-padded borders. At the borders of a 'same' convolution or a zero_padding2d, and for the
uneven overlap of a strided transposed convolution, the folded value is the interior (mean) one.
"""

from __future__ import annotations

from collections.abc import Mapping

import keras
import numpy as np

from prunespec.groups import Group, Layout, layer_inputs
from prunespec.layers import Layer, ModelSpec

Weights = dict[str, list[np.ndarray]]
#: Per-channel layers that leave a constant channel's value unchanged (at inference).
PASS_THROUGH = frozenset(
    {
        "dropout",
        "max_pool",
        "avg_pool",
        "zero_padding2d",
        "upsampling2d",
        "global_avg_pool",
        "global_max_pool",
    }
)
#: Index of the bias among a layer's weights, by layer type.
BIAS_INDEX = {"dense": 1, "conv2d": 1, "conv2d_transpose": 1, "separable_conv2d": 2, "depthwise_conv2d": 1}


def activate(values: np.ndarray, activation: str) -> np.ndarray:
    """A Keras activation applied to a NumPy array (float64 for the common ones)."""
    if activation == "linear":
        return values
    if activation == "relu":
        return np.maximum(values, 0.0)
    if activation == "tanh":
        return np.tanh(values)
    if activation == "sigmoid":
        return 1.0 / (1.0 + np.exp(-values))
    function = keras.activations.get(activation)
    return np.asarray(keras.ops.convert_to_numpy(function(values.astype(np.float32))), dtype=np.float64)


def channel_indices(
    layout: Layout, group: str, channels: np.ndarray, offset: int | None = None
) -> np.ndarray:
    """(positions, len(channels)) indices of a group's channels in a tensor with this layout."""
    start = layout.segment(group).offset if offset is None else offset  # type: ignore[union-attr]
    positions = np.arange(layout.positions)[:, None] * layout.stride
    return positions + start + np.asarray(channels, dtype=np.int64)[None, :]


class ConstantPropagation:
    """Carries one group's per-channel constants from its probes to its consumers' inputs."""

    def __init__(self, spec: ModelSpec, weights: Weights, layouts: Mapping[str, Layout], group: Group):
        self.spec = spec
        self.weights = weights
        self.layouts = layouts
        self.group = group
        self.inputs = layer_inputs(spec)
        self.channels = np.arange(group.width)

    def _member(self, layer: Layer, values: list[np.ndarray]) -> np.ndarray:
        """The value a member outputs given its group inputs' values, (positions, width)."""
        name = layer.key
        kind = layer.type
        if kind == "add":
            return np.sum(values, axis=0)
        if kind == "multiply":
            return np.prod(values, axis=0)
        value = values[0]
        if kind == "concatenate" or kind in PASS_THROUGH:
            return value
        if kind == "flatten":
            return np.broadcast_to(value, (self.layouts[name].positions, value.shape[1])).copy()
        if kind == "batch_norm":
            index = channel_indices(self.layouts[name], self.group.name, self.channels)
            gamma, beta, mean, variance = (p.astype(np.float64)[index] for p in self.weights[name])
            epsilon = float(getattr(layer, "epsilon", 1e-3))
            return (value - mean) / np.sqrt(variance + epsilon) * gamma + beta
        if kind == "activation":
            return activate(value, str(getattr(layer, "activation", "linear")))
        if kind == "depthwise_conv2d":
            segment = self.layouts[name].segment(self.group.name)
            assert segment is not None
            params = self.weights[name]
            kernel = params[0][:, :, segment.offset : segment.offset + segment.width, 0].astype(np.float64)
            value = value * kernel.sum(axis=(0, 1))
            if len(params) > 1:
                value = value + params[1][segment.offset : segment.offset + segment.width]
            return activate(value, str(getattr(layer, "activation", "linear")))
        raise ValueError(f"layer '{name}': cannot carry a constant channel through {kind}")

    def consumer_inputs(self, at_probes: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Each consumer's input value of the group's channels, (positions, width), by consumer name.

        Args:
            at_probes: per probe name, a (width,) value for every channel (only the removed constant
                channels matter; the others may hold anything).

        Raises:
            ValueError: a consumer's input cannot be traced back to measured probes.
        """
        values: dict[str, np.ndarray] = {
            name: np.asarray(v, dtype=np.float64).reshape(1, -1) for name, v in at_probes.items()
        }
        members = set(self.group.members)
        for layer in self.spec.layers:
            name = layer.key
            if name in values or name not in members:
                continue
            carried = [
                values.get(source)
                for source in self.inputs[name]
                if self.layouts[source].segment(self.group.name) is not None
            ]
            if carried and all(v is not None for v in carried):
                values[name] = self._member(layer, [v for v in carried if v is not None])
        result: dict[str, np.ndarray] = {}
        for consumer in self.group.consumers:
            source = self.inputs[consumer.layer][0]
            if source not in values:
                raise ValueError(
                    f"group '{self.group.name}': no measured value reaches '{consumer.layer}' "
                    f"(through '{source}'); measure every probe of the group: {list(self.group.probes)}"
                )
            result[consumer.layer] = values[source]
        return result


def consumer_delta(
    layer: object, kernels: list[np.ndarray], value: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    """What a consumer's pre-activation gains from constant inputs ``value`` at input ``rows``.

    Args:
        layer: the consumer's spec layer.
        kernels: its weights.
        value: (positions, width) input values.
        rows: (positions, width) indices of those inputs in the consumer's input dimension.

    Returns:
        (outputs,) float64.
    """
    kind = getattr(layer, "type", "")
    if kind == "dense":
        return np.einsum("pi,pio->o", value, kernels[0].astype(np.float64)[rows])
    channels = rows[0]
    flat = value[0]
    if kind == "conv2d_transpose":
        sh, sw = getattr(layer, "strides", (1, 1))
        return np.einsum("hwoi,i->o", kernels[0].astype(np.float64)[..., channels], flat) / (sh * sw)
    if kind == "separable_conv2d":
        spatial = kernels[0].astype(np.float64)[:, :, channels, 0].sum(axis=(0, 1)) * flat
        return spatial @ kernels[1].astype(np.float64)[0, 0, channels, :]
    return np.einsum("hwio,i->o", kernels[0].astype(np.float64)[:, :, channels, :], flat)
