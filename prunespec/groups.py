"""Dependency groups: which channels of a graph must be removed together.

A channel leaves a model only together with everything it is tied to: every producer feeding one
``add`` or ``multiply`` (their outputs are summed or multiplied channel by channel), the input and
output channels of a depthwise convolution, the channels an index range of a ``concatenate`` carries,
and every per-channel layer (batch norm, activation, dropout, pooling, padding, upsampling, global
pooling) on the way. Such a set of channel positions is a *group*. Layers that mix channels
(dense, conv2d, conv2d_transpose, separable_conv2d) end a group: their *input* dimension shrinks.

The groups come from one pass over the layers in model order. Every tensor gets a *layout*: the
ranges of groups its channels carry (a producer starts a new group, a concatenation lists its inputs'
ranges one after the other, an add or multiply ties its inputs' groups together), and, behind a
flatten, the number of positions the channels repeat over (flattened channels are position-major).

For a sequential model every group is one weighted layer with the layers up to the next weighted one,
named and probed exactly as before graphs existed.

Pure Python: this module never imports TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prunespec.layers import ModelSpec

#: Layers whose output channels are new (a group starts there) and whose input dimension shrinks.
PRODUCERS = frozenset({"dense", "conv2d", "conv2d_transpose", "separable_conv2d"})
#: Single-input layers that act on every channel separately; the channels flow through them.
PER_CHANNEL = frozenset(
    {
        "batch_norm",
        "activation",
        "dropout",
        "max_pool",
        "avg_pool",
        "zero_padding2d",
        "upsampling2d",
        "global_avg_pool",
        "global_max_pool",
        "depthwise_conv2d",
    }
)
#: Layers that keep every value where it is; a probe may move through them.
ELEMENTWISE = frozenset({"batch_norm", "activation", "dropout"})
#: Layers that combine their inputs channel by channel.
JOINS = frozenset({"add", "multiply"})
#: Per-channel layers that may follow a flatten (they act on every flattened position).
FLAT_MEMBERS = frozenset({"batch_norm", "activation", "dropout", "flatten"})
#: The name of the model's input in ``inputs``, and of the group of its channels.
INPUT = "input"

FEEDS_OUTPUT = "feeds the model's output"
CROSSES_RESHAPE = "crosses a reshape"
CARRIES_INPUT = "carries the model's input"
SOFTMAX = "a softmax mixes its channels"


@dataclass(frozen=True)
class Consumer:
    """A layer whose input dimension shrinks with a group.

    Attributes:
        layer: the layer's name (dense, conv2d, conv2d_transpose or separable_conv2d).
        offset: where the group's channels start among that layer's input channels.
        flatten: name of a flatten between the group and this layer, or None; the layer's inputs are
            then the flattened positions, each carrying all channels (position-major).
    """

    layer: str
    offset: int
    flatten: str | None = None


@dataclass(frozen=True)
class Group:
    """Channels that must be removed together.

    Attributes:
        name: the first producer's layer name (for a sequential model: the prunable layer's name).
        width: channels in the group.
        producers: layers whose output channels are the group's channels, in model order.
        members: layers the channels flow through channel by channel, in model order.
        consumers: layers whose input dimension shrinks with the group, in model order.
        probes: layers whose outputs are measured; ``probes[0]`` is the primary one (the end of the
            batch norm / activation / dropout chain after the first producer).
        fixed: None when the group can shrink, else why not.
    """

    name: str
    width: int
    producers: tuple[str, ...]
    members: tuple[str, ...]
    consumers: tuple[Consumer, ...]
    probes: tuple[str, ...]
    fixed: str | None = None


@dataclass(frozen=True)
class Segment:
    """One group's channels inside a tensor: ``width`` channels from ``offset``."""

    group: str
    offset: int
    width: int


@dataclass(frozen=True)
class Layout:
    """Where every group's channels are in one layer's output.

    Attributes:
        segments: the groups' channel ranges, in channel order.
        positions: how many positions a flattened tensor repeats the channels over (1 otherwise).
        stride: channels per position (the unflattened channel count).
        flatten: the flatten layer that flattened the channels, or None.

    Channel ``i`` of a segment sits at index ``p · stride + offset + i`` for every position ``p``.
    """

    segments: tuple[Segment, ...]
    positions: int = 1
    stride: int = 0
    flatten: str | None = None

    def segment(self, group: str) -> Segment | None:
        """The group's range in this tensor, if it has one."""
        for segment in self.segments:
            if segment.group == group:
                return segment
        return None


def layer_inputs(spec: ModelSpec) -> dict[str, tuple[str, ...]]:
    """Every layer's inputs by name (a layer without ``inputs`` reads the previous layer)."""
    result: dict[str, tuple[str, ...]] = {}
    previous = INPUT
    for layer in spec.layers:
        name = layer.key
        named = getattr(layer, "inputs", None)
        result[name] = tuple(named) if named else (previous,)
        previous = name
    return result


def consumers_by_name(spec: ModelSpec) -> dict[str, list[str]]:
    """Every layer (and ``input``) with the layers that read it, in model order."""
    result: dict[str, list[str]] = {INPUT: []}
    for layer in spec.layers:
        result[layer.key] = []
    for name, inputs in layer_inputs(spec).items():
        for source in inputs:
            result.setdefault(source, []).append(name)
    return result


class _Spaces:
    """Union-find over channel spaces (one per producer output and one for the input)."""

    def __init__(self) -> None:
        self.parent: list[int] = []
        self.width: list[int] = []
        self.fixed: dict[int, str] = {}

    def new(self, width: int) -> int:
        self.parent.append(len(self.parent))
        self.width.append(width)
        return len(self.parent) - 1

    def root(self, space: int) -> int:
        while self.parent[space] != space:
            self.parent[space] = self.parent[self.parent[space]]
            space = self.parent[space]
        return space

    def union(self, a: int, b: int) -> None:
        ra, rb = self.root(a), self.root(b)
        if ra == rb:
            return
        keep, drop = min(ra, rb), max(ra, rb)
        self.parent[drop] = keep
        if drop in self.fixed and keep not in self.fixed:
            self.fixed[keep] = self.fixed[drop]

    def fix(self, space: int, reason: str) -> None:
        self.fixed.setdefault(self.root(space), reason)

    def reason(self, space: int) -> str | None:
        return self.fixed.get(self.root(space))


@dataclass
class _Tensor:
    """A layout under construction: (space, width) ranges, and the flatten behind them."""

    ranges: list[tuple[int, int]]
    positions: int = 1
    stride: int = 0
    flatten: str | None = None
    spaces: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.spaces = {space for space, _ in self.ranges}


def _activation_of(layer: Any) -> str | None:
    value = getattr(layer, "activation", None)
    return None if value is None else str(value)


class _Walk:
    """One pass over the layers building layouts and tying spaces together."""

    def __init__(self, spec: ModelSpec):
        self.spec = spec
        self.spaces = _Spaces()
        self.tensors: dict[str, _Tensor] = {}
        self.producer_space: dict[str, int] = {}
        self.inputs = layer_inputs(spec)
        shapes = spec.shapes
        self.shape = {layer.key: tuple(shapes[i]) for i, layer in enumerate(spec.layers)}
        self.shape[INPUT] = tuple(spec.input_shape)
        channels = int(spec.input_shape[-1])
        self.tensors[INPUT] = _Tensor([(self.spaces.new(channels), channels)], stride=channels)
        self.spaces.fix(self.tensors[INPUT].ranges[0][0], CARRIES_INPUT)

    def _fix_all(self, tensor: _Tensor, reason: str) -> None:
        for space in tensor.spaces:
            self.spaces.fix(space, reason)

    def _join(self, name: str, sources: list[_Tensor]) -> _Tensor:
        first = sources[0]
        for other in sources[1:]:
            same = [w for _, w in first.ranges] == [w for _, w in other.ranges] and (
                first.positions == other.positions
            )
            if same:
                for (a, _), (b, _) in zip(first.ranges, other.ranges, strict=True):
                    self.spaces.union(a, b)
            else:
                for space in first.spaces | other.spaces:
                    self.spaces.union(space, next(iter(first.spaces)))
                self.spaces.fix(next(iter(first.spaces)), f"'{name}' joins differently split channels")
        if any(s.flatten is not None for s in sources):
            for source in sources:
                self._fix_all(source, f"flattened channels reach '{name}'")
        return _Tensor(list(first.ranges), first.positions, first.stride, first.flatten)

    def visit(self, layer: Any) -> None:
        name = layer.key
        kind = str(layer.type)
        sources = [self.tensors[source] for source in self.inputs[name]]
        out_channels = int(self.shape[name][-1]) if self.shape[name] else 1
        if kind in PRODUCERS:
            space = self.spaces.new(out_channels)
            self.producer_space[name] = space
            if _activation_of(layer) == "softmax":
                self.spaces.fix(space, SOFTMAX)
            if kind != "dense" and sources[0].flatten is not None:
                self._fix_all(sources[0], f"flattened channels reach '{name}'")
            self.tensors[name] = _Tensor([(space, out_channels)], stride=out_channels)
            return
        source = sources[0]
        if kind in JOINS:
            self.tensors[name] = self._join(name, sources)
            return
        if kind == "concatenate":
            ranges = [r for s in sources for r in s.ranges]
            for s in sources:
                if s.flatten is not None:
                    self._fix_all(s, f"flattened channels reach '{name}'")
            self.tensors[name] = _Tensor(ranges, stride=out_channels)
            return
        if kind == "flatten":
            if source.flatten is not None:
                self.tensors[name] = source
                return
            in_shape = self.shape[self.inputs[name][0]]
            positions = math.prod(in_shape[:-1]) if len(in_shape) > 1 else 1
            self.tensors[name] = _Tensor(list(source.ranges), positions, int(in_shape[-1]), name)
            return
        if kind in PER_CHANNEL:
            if _activation_of(layer) == "softmax":
                self._fix_all(source, SOFTMAX)
            if source.flatten is not None and kind not in FLAT_MEMBERS:
                self._fix_all(source, f"flattened channels reach '{name}'")
            self.tensors[name] = source
            return
        reason = CROSSES_RESHAPE if kind == "reshape" else f"layer type {kind} not supported"
        for s in sources:
            self._fix_all(s, reason)
        # whatever comes out has channels no group can follow: a fresh, fixed space
        space = self.spaces.new(out_channels)
        self.spaces.fix(space, reason)
        self.tensors[name] = _Tensor([(space, out_channels)], stride=out_channels)


def _walk(spec: ModelSpec) -> _Walk:
    walk = _Walk(spec)
    for layer in spec.layers:
        walk.visit(layer)
    walk._fix_all(walk.tensors[spec.layers[-1].key], FEEDS_OUTPUT)
    for name, tensor in walk.tensors.items():
        roots = [walk.spaces.root(space) for space, _ in tensor.ranges]
        for root in {r for r in roots if roots.count(r) > 1}:
            walk.spaces.fix(root, f"'{name}' holds the same channels twice")
    return walk


def _group_names(walk: _Walk, spec: ModelSpec) -> dict[int, str]:
    """Root space -> group name: its first producer, or ``input`` for the input's own channels."""
    names: dict[int, str] = {}
    for layer in spec.layers:
        name = layer.key
        if name in walk.producer_space:
            names.setdefault(walk.spaces.root(walk.producer_space[name]), name)
    names.setdefault(walk.spaces.root(walk.tensors[INPUT].ranges[0][0]), INPUT)
    return names


def tensor_layouts(spec: ModelSpec) -> dict[str, Layout]:
    """Every layer's output layout (and the input's, under ``input``), by layer name."""
    walk = _walk(spec)
    return _layouts(walk, _group_names(walk, spec))


def _layouts(walk: _Walk, names: dict[int, str]) -> dict[str, Layout]:
    result: dict[str, Layout] = {}
    for name, tensor in walk.tensors.items():
        segments: list[Segment] = []
        offset = 0
        for space, width in tensor.ranges:
            segments.append(Segment(names.get(walk.spaces.root(space), f"#{space}"), offset, width))
            offset += width
        result[name] = Layout(tuple(segments), tensor.positions, tensor.stride or offset, tensor.flatten)
    return result


def _chain_end(start: str, spec: ModelSpec, readers: dict[str, list[str]]) -> str:
    """The last layer of the batch norm / activation / dropout chain right after ``start``."""
    layers = {layer.key: layer for layer in spec.layers}
    current = start
    while len(readers[current]) == 1:
        following = layers[readers[current][0]]
        if following.type not in ELEMENTWISE or _activation_of(following) == "softmax":
            break
        current = following.key
    return current


def dependency_groups(spec: ModelSpec) -> list[Group]:
    """Every group of a model, prunable and fixed, in the order of their first producers.

    Args:
        spec: the model.

    Returns:
        one Group per set of channels that must be removed together (the input's own channels are
        no group).
    """
    walk = _walk(spec)
    names = _group_names(walk, spec)
    layouts = _layouts(walk, names)
    readers = consumers_by_name(spec)
    order = {layer.key: i for i, layer in enumerate(spec.layers)}
    kinds = {layer.key: str(layer.type) for layer in spec.layers}
    producers: dict[str, list[str]] = {}
    members: dict[str, list[str]] = {}
    consumers: dict[str, list[Consumer]] = {}
    for layer in spec.layers:
        name = layer.key
        if name in walk.producer_space:
            group = names[walk.spaces.root(walk.producer_space[name])]
            producers.setdefault(group, []).append(name)
        else:
            for segment in layouts[name].segments:
                members.setdefault(segment.group, []).append(name)
        if layer.type in PRODUCERS:
            source = layouts[walk.inputs[name][0]]
            for segment in source.segments:
                consumers.setdefault(segment.group, []).append(Consumer(name, segment.offset, source.flatten))
    groups: list[Group] = []
    for root, group in names.items():
        if group == INPUT:
            continue
        probes = [_chain_end(p, spec, readers) for p in producers[group]]
        for member in members.get(group, []):
            kind = kinds[member]
            layout = layouts[member]
            if kind in JOINS | {"depthwise_conv2d"} and len(layout.segments) == 1 and not layout.flatten:
                probes.append(_chain_end(member, spec, readers))
        primary, rest = probes[0], sorted(set(probes[1:]) - {probes[0]}, key=order.__getitem__)
        groups.append(
            Group(
                name=group,
                width=walk.spaces.width[root],
                producers=tuple(producers[group]),
                members=tuple(members.get(group, [])),
                consumers=tuple(consumers.get(group, [])),
                probes=(primary, *rest),
                fixed=walk.spaces.reason(root),
            )
        )
    groups.sort(key=lambda g: order[g.name])
    return groups


def prunable_groups(spec: ModelSpec) -> list[Group]:
    """The groups that can shrink, in model order."""
    return [group for group in dependency_groups(spec) if group.fixed is None]


def groups_by_name(spec: ModelSpec) -> dict[str, Group]:
    """Every group by name."""
    return {group.name: group for group in dependency_groups(spec)}


def with_group_widths(spec: ModelSpec, widths: Mapping[str, int]) -> ModelSpec:
    """A copy of the spec with new widths for the named groups: every producer of a group resized at once.

    Args:
        spec: a validated model.
        widths: channels by group name (for a sequential model, the prunable layer's name).

    Returns:
        The resized spec, validated again.

    Raises:
        ValueError: a name is not a group of this model.
    """
    groups = groups_by_name(spec)
    unknown = sorted(set(widths) - set(groups))
    if unknown:
        raise ValueError(f"{unknown} are not dependency groups; groups: {list(groups)}")
    return spec.with_widths(
        {layer: int(width) for name, width in widths.items() for layer in groups[name].producers}
    )
