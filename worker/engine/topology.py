"""The sequential view of where a prunable layer's units live: the block from a weighted layer to the next.

The engine (surgery, statistics, the cycle loop) works on dependency groups (``prunespec.groups``),
which cover graphs and, for a sequential model, are exactly these blocks (same names, same probes).
This module stays for readers of sequential specs.
"""

from __future__ import annotations

from dataclasses import dataclass

from prunespec.layers import ActivationLayer, BatchNormLayer, DropoutLayer, ModelSpec

#: Layers that act on every unit separately and keep the shape: they belong to the unit they follow.
ELEMENTWISE = (BatchNormLayer, ActivationLayer, DropoutLayer)


@dataclass(frozen=True)
class UnitBlock:
    """A prunable weighted layer and the layers its units flow through until the next weighted layer.

    Attributes:
        name: the weighted layer's name.
        index: its index in the spec.
        probe: index of the layer whose output is measured: the last of the elementwise layers
            (batch_norm, activation, dropout) right after the weighted layer, or the layer itself.
        following: indices strictly between the weighted layer and ``next_index``.
        next_index: index of the next weighted layer, whose input dimension shrinks with this layer.
    """

    name: str
    index: int
    probe: int
    following: tuple[int, ...]
    next_index: int


def unit_blocks(spec: ModelSpec) -> dict[str, UnitBlock]:
    """One block per prunable layer, by layer name, in model order."""
    weighted = spec.weighted_indices()
    blocks: dict[str, UnitBlock] = {}
    for index, next_index in zip(weighted[:-1], weighted[1:], strict=True):
        probe = index
        while probe + 1 < next_index and isinstance(spec.layers[probe + 1], ELEMENTWISE):
            probe += 1
        name = spec.layers[index].name or ""
        blocks[name] = UnitBlock(
            name=name,
            index=index,
            probe=probe,
            following=tuple(range(index + 1, next_index)),
            next_index=next_index,
        )
    return blocks


def probe_activation(spec: ModelSpec, block: UnitBlock) -> str:
    """The activation applied last before the probe point ('linear' when there is none)."""
    for i in range(block.probe, block.index - 1, -1):
        layer = spec.layers[i]
        if isinstance(layer, BatchNormLayer):
            return "linear"
        activation = getattr(layer, "activation", None)
        if activation is not None:
            return str(activation)
    return "linear"
