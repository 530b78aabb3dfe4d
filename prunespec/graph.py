"""The wiring of a model graph: which layer feeds which, and the shape every layer yields.

A model is an input plus a topologically ordered list of layers; each layer names its ``inputs``
(earlier layers, or ``"input"`` for the model's input). Omitted inputs mean the previous layer, so a
sequential stack needs no wiring at all. The model's output is the last layer, and every layer must
reach it. This module knows layers only through the small protocol below (a name, a type, inputs,
an arity and a shape rule), so the layer vocabulary in ``prunespec.layers`` can grow without it.

Errors name the layer as ``layer <index> (<type> '<name>')``.

This module never imports TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import ClassVar, Protocol

Shape = tuple[int, ...]

#: The name that stands for the model's input in a layer's ``inputs``.
MODEL_INPUT = "input"


class SpecShapeError(ValueError):
    """A layer's input shape does not fit the layer, or the graph's wiring is wrong."""


class GraphLayer(Protocol):
    """What the graph needs to know of a layer."""

    arity: ClassVar[tuple[int, int | None]]

    @property
    def name(self) -> str | None: ...

    @property
    def type(self) -> str: ...

    @property
    def inputs(self) -> tuple[str, ...] | None: ...

    def infer(self, shapes: tuple[Shape, ...], sources: tuple[str, ...]) -> Shape: ...


def conv_length(size: int, kernel: int, stride: int, padding: str) -> int:
    """Output length of a convolution or pool along one axis."""
    if padding == "same":
        return math.ceil(size / stride)
    return (size - kernel) // stride + 1


def deconv_length(size: int, kernel: int, stride: int, padding: str) -> int:
    """Output length of a transposed convolution along one axis."""
    if padding == "same":
        return size * stride
    return size * stride + max(kernel - stride, 0)


def label(index: int, layer: GraphLayer) -> str:
    """How errors name a layer: ``layer 3 (conv2d 'conv1')``."""
    name = f" '{layer.name}'" if layer.name else ""
    return f"layer {index} ({layer.type}{name})"


def input_names(layers: Sequence[GraphLayer]) -> list[tuple[str, ...]]:
    """Every layer's inputs, the previous layer (or ``"input"``) where a layer names none."""
    out: list[tuple[str, ...]] = []
    previous = MODEL_INPUT
    for index, layer in enumerate(layers):
        out.append(layer.inputs if layer.inputs is not None else (previous,))
        previous = layer.name or f"{layer.type}_{index}"
    return out


def check_wiring(layers: Sequence[GraphLayer]) -> None:
    """Check that every input names an earlier layer or the model's input, with the right count.

    Args:
        layers: named layers in model order.

    Raises:
        SpecShapeError: naming the first layer with an unknown input, an input that comes later in
            the list (a forward reference or a cycle), or the wrong number of inputs.
    """
    position = {layer.name: index for index, layer in enumerate(layers)}
    for index, (layer, sources) in enumerate(zip(layers, input_names(layers), strict=True)):
        for source in sources:
            if source == MODEL_INPUT:
                continue
            if source not in position:
                earlier = [MODEL_INPUT, *(str(x.name) for x in layers[:index])]
                raise SpecShapeError(
                    f"{label(index, layer)}: input '{source}' is not a layer of this model; "
                    f"it may take inputs from {earlier}"
                )
            if position[source] >= index:
                raise SpecShapeError(
                    f"{label(index, layer)}: input '{source}' is not an earlier layer (a forward "
                    "reference or a cycle); a layer may only take inputs from earlier layers or 'input'"
                )
        least, most = layer.arity
        if len(sources) < least or (most is not None and len(sources) > most):
            wanted = "one input" if most == 1 else f"at least {least} inputs"
            raise SpecShapeError(
                f"{label(index, layer)}: takes {wanted} but is given {len(sources)} {list(sources)}"
            )


def check_reaches_output(layers: Sequence[GraphLayer]) -> None:
    """Check that every layer feeds the model's output (the last layer), directly or not.

    Raises:
        SpecShapeError: naming the first layer whose output goes nowhere.
    """
    sources = input_names(layers)
    needed = {layers[-1].name}
    for layer, inputs in zip(reversed(layers), reversed(sources), strict=True):
        if layer.name in needed:
            needed.update(inputs)
    for index, layer in enumerate(layers):
        if layer.name not in needed:
            raise SpecShapeError(
                f"{label(index, layer)}: its output reaches no later layer and it is not the model's "
                "output (the last layer); name it in a later layer's inputs or remove it"
            )


def infer_graph(
    input_shape: Iterable[int], layers: Sequence[GraphLayer]
) -> tuple[list[tuple[Shape, ...]], list[Shape]]:
    """The shapes every layer receives and the shape it yields.

    Returns:
        ``(received, outputs)``: ``received[i]`` holds one shape per input of layer ``i``,
        ``outputs[i]`` is the shape layer ``i`` yields (batch axis excluded).

    Raises:
        SpecShapeError: naming the index, type and name of the first layer that does not fit.
    """
    by_name: dict[str, Shape] = {MODEL_INPUT: tuple(input_shape)}
    received: list[tuple[Shape, ...]] = []
    outputs: list[Shape] = []
    for index, (layer, sources) in enumerate(zip(layers, input_names(layers), strict=True)):
        missing = [source for source in sources if source not in by_name]
        if missing:
            raise SpecShapeError(f"{label(index, layer)}: input '{missing[0]}' is not an earlier layer")
        shapes = tuple(by_name[source] for source in sources)
        try:
            shape = layer.infer(shapes, sources)
        except SpecShapeError as exc:
            raise SpecShapeError(f"{label(index, layer)}: {exc}") from None
        received.append(shapes)
        outputs.append(shape)
        by_name[layer.name or f"{layer.type}_{index}"] = shape
    return received, outputs


def infer_shapes(input_shape: Iterable[int], layers: Sequence[GraphLayer]) -> list[Shape]:
    """Output shape of every layer in order.

    Raises:
        SpecShapeError: naming the index, type and name of the first layer that does not fit.
    """
    return infer_graph(input_shape, list(layers))[1]


def infer_input_shapes(input_shape: Iterable[int], layers: Sequence[GraphLayer]) -> list[tuple[Shape, ...]]:
    """The shapes every layer receives, one tuple per layer (one shape per input).

    Raises:
        SpecShapeError: naming the index, type and name of the first layer that does not fit.
    """
    return infer_graph(input_shape, list(layers))[0]


def consumers(layers: Sequence[GraphLayer]) -> dict[str, list[str]]:
    """For every layer name (and ``"input"``), the layers that take it as an input, in model order."""
    out: dict[str, list[str]] = {MODEL_INPUT: []}
    for layer in layers:
        out[str(layer.name)] = []
    for layer, sources in zip(layers, input_names(layers), strict=True):
        for source in dict.fromkeys(sources):
            out.setdefault(source, []).append(str(layer.name))
    return out
