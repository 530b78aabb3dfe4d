"""The model language: a model is an input shape plus a graph of layers, listed in model order.

Every layer may name its ``inputs`` (earlier layers, or ``"input"`` for the model's input); omitted, a
layer takes the previous layer's output, so a sequential stack is written as it always was. The
model's output is the last layer. Every model spec is validated when it is constructed: unknown
fields are rejected, numbers are bounded, and the graph's wiring and shapes are checked, naming the
layer that does not fit. Specs round-trip through plain dicts (``model_dump`` / ``model_validate``),
so the same text serves YAML files, the REST API and the database; a dump leaves out the inputs a
reader would assume (the previous layer), so a sequential spec reads as it always did.

The layer types are in ``prunespec.layer_types`` and re-exported here; the wiring and shape inference
in ``prunespec.graph``; experiments around a model in ``prunespec.spec``; named models in
``prunespec.presets``.

This module never imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    field_serializer,
    field_validator,
)

from prunespec.graph import (
    MODEL_INPUT,
    Shape,
    SpecShapeError,
    check_reaches_output,
    check_wiring,
    consumers,
    infer_graph,
    infer_input_shapes,
    infer_shapes,
    input_names,
)
from prunespec.layer_types import (
    LAYER_NAME_PATTERN,
    WEIGHTED_TYPES_CLS,
    WIDTH_TYPES,
    Activation,
    ActivationLayer,
    AddLayer,
    AvgPoolLayer,
    BatchNormLayer,
    ConcatenateLayer,
    Conv2DLayer,
    Conv2DTransposeLayer,
    DenseLayer,
    DepthwiseConv2DLayer,
    DropoutLayer,
    FlattenLayer,
    GlobalAvgPoolLayer,
    GlobalMaxPoolLayer,
    Layer,
    MaxPoolLayer,
    MultiplyLayer,
    Padding,
    ReshapeLayer,
    SeparableConv2DLayer,
    StrictModel,
    UpSampling2DLayer,
    ZeroPadding2DLayer,
    layer_output_shape,
    width_of,
)

__all__ = [
    "LAYER_NAME_PATTERN",
    "MODEL_INPUT",
    "WEIGHTED_TYPES_CLS",
    "WIDTH_TYPES",
    "Activation",
    "ActivationLayer",
    "AddLayer",
    "AvgPoolLayer",
    "BatchNormLayer",
    "ConcatenateLayer",
    "Conv2DLayer",
    "Conv2DTransposeLayer",
    "DenseLayer",
    "DepthwiseConv2DLayer",
    "DropoutLayer",
    "FlattenLayer",
    "GlobalAvgPoolLayer",
    "GlobalMaxPoolLayer",
    "Layer",
    "MaxPoolLayer",
    "ModelSpec",
    "MultiplyLayer",
    "Padding",
    "ReshapeLayer",
    "SeparableConv2DLayer",
    "Shape",
    "SpecShapeError",
    "StrictModel",
    "UpSampling2DLayer",
    "ZeroPadding2DLayer",
    "infer_input_shapes",
    "infer_shapes",
    "layer_output_shape",
    "width_of",
]


def _named_and_wired(layers: list[Layer]) -> list[Layer]:
    """The layers with a name (``<type>_<index>`` where none was given) and explicit inputs."""
    named: list[Layer] = []
    for index, layer in enumerate(layers):
        if layer.name is None:
            layer = layer.model_copy(update={"name": f"{layer.type}_{index}"})
        named.append(layer)
    seen: set[str] = set()
    for index, layer in enumerate(named):
        assert layer.name is not None
        if layer.name in seen:
            raise ValueError(f"layer {index}: name '{layer.name}' is used twice")
        if layer.name == MODEL_INPUT:
            raise ValueError(f"layer {index}: the name 'input' is reserved for the model's input")
        seen.add(layer.name)
    sources = input_names(named)
    return [layer.model_copy(update={"inputs": inputs}) for layer, inputs in zip(named, sources, strict=True)]


class ModelSpec(StrictModel):
    """An input shape and a graph of layers in model order (channels-last images).

    After validation every layer has a ``name`` and its ``inputs`` (a tuple of earlier layer names or
    ``"input"``); the last layer is the model's output.
    """

    input_shape: tuple[Annotated[int, Field(ge=1, le=100_000)], ...] = Field(min_length=1, max_length=3)
    layers: list[Layer] = Field(min_length=1, max_length=256)

    @field_validator("layers")
    @classmethod
    def _names_and_shapes(cls, layers: list[Layer], info: ValidationInfo) -> list[Layer]:
        named = _named_and_wired(layers)
        if not any(isinstance(layer, WEIGHTED_TYPES_CLS) for layer in named):
            raise ValueError(
                "a model needs at least one dense, conv2d, conv2d_transpose or separable_conv2d layer"
            )
        check_wiring(named)
        input_shape = info.data.get("input_shape")
        if input_shape is not None:
            infer_shapes(input_shape, named)
        check_reaches_output(named)
        return named

    @field_serializer("layers", mode="wrap")
    def _implied_inputs_left_out(  # type: ignore[no-untyped-def]  # no return type: keeps the schema
        self, layers: list[Layer], handler: SerializerFunctionWrapHandler
    ):
        """Dump a layer's inputs only where they are not simply the previous layer."""
        dumped = handler(layers)
        previous = MODEL_INPUT
        for row in dumped:
            if isinstance(row, dict):
                if tuple(row.get("inputs") or ()) == (previous,):
                    row.pop("inputs", None)
                previous = row.get("name") or previous
        return dumped

    @property
    def _graph(self) -> tuple[list[tuple[Shape, ...]], list[Shape]]:
        """Input and output shapes of every layer, computed once for these layers and input shape.

        The cache sits in the instance's ``__dict__`` beside the fields (as a ``cached_property``
        would; equality and dumps see only fields) and remembers which list and input shape it was
        computed for, so a copy made with ``model_copy(update=...)`` computes its own.
        """
        cached = self.__dict__.get("_graph_cache")
        if cached is not None and cached[0] is self.layers and cached[1] == self.input_shape:
            graph: tuple[list[tuple[Shape, ...]], list[Shape]] = cached[2]
            return graph
        graph = infer_graph(self.input_shape, self.layers)
        self.__dict__["_graph_cache"] = (self.layers, self.input_shape, graph)
        return graph

    @property
    def shapes(self) -> list[Shape]:
        """Output shape of every layer, aligned with ``layers``."""
        return list(self._graph[1])

    @property
    def output_shape(self) -> Shape:
        return self._graph[1][-1]

    def input_shapes(self, layer: int | str) -> list[Shape]:
        """The shapes one layer receives, one per input, in the order of its ``inputs``.

        Args:
            layer: the layer's index or name.
        """
        index = layer if isinstance(layer, int) else self.index_of(layer)
        return list(self._graph[0][index])

    def all_input_shapes(self) -> list[tuple[Shape, ...]]:
        """The shapes every layer receives (one tuple per layer, one shape per input)."""
        return list(self._graph[0])

    def layer_names(self) -> list[str]:
        return [layer.key for layer in self.layers]

    def index_of(self, name: str) -> int:
        """The position of the named layer.

        Raises:
            KeyError: no layer has that name.
        """
        for index, layer in enumerate(self.layers):
            if layer.name == name:
                return index
        raise KeyError(f"no layer '{name}'; layers: {self.layer_names()}")

    def layer_by_name(self, name: str) -> Layer:
        """The named layer.

        Raises:
            KeyError: no layer has that name.
        """
        return self.layers[self.index_of(name)]

    def inputs_of(self, name: str) -> tuple[str, ...]:
        """The names the layer takes its inputs from (``"input"`` for the model's input)."""
        return self.layer_by_name(name).inputs or ()

    def consumers_of(self, name: str) -> list[str]:
        """The layers that take the named layer (or ``"input"``) as an input, in model order."""
        if name != MODEL_INPUT:
            self.index_of(name)
        return list(consumers(self.layers).get(name, []))

    def is_sequential(self) -> bool:
        """True when every layer takes exactly the previous layer's output (a plain stack)."""
        return all(
            tuple(layer.inputs or ()) == source
            for layer, source in zip(self.layers, self._chain(), strict=True)
        )

    def _chain(self) -> list[tuple[str, ...]]:
        return [(MODEL_INPUT,), *((name,) for name in self.layer_names()[:-1])]

    def weighted_indices(self) -> list[int]:
        """Indices of layers with a width of their own (dense, conv2d, conv2d_transpose, separable_conv2d)."""
        return [i for i, layer in enumerate(self.layers) if isinstance(layer, WEIGHTED_TYPES_CLS)]

    def prunable_indices(self) -> list[int]:
        """Weighted layers whose units feed another weighted layer (the output layer never is).

        The one place that decides what can shrink; the dependency groups (``prunespec.groups``)
        replace it for graphs. For a sequential model: every weighted layer but the last.
        """
        return self.weighted_indices()[:-1]

    def prunable_names(self) -> list[str]:
        """Names of the dependency groups that can shrink (see ``prunespec.groups``), in model order."""
        from prunespec.groups import prunable_groups  # groups reads this module

        return [group.name for group in prunable_groups(self)]

    def widths(self) -> dict[str, int]:
        """Units or channels of every layer with a width of its own, by layer name."""
        out: dict[str, int] = {}
        for layer in self.layers:
            width = width_of(layer)
            if width is not None:
                out[layer.key] = width
        return out

    def with_widths(self, widths: Mapping[str, int]) -> ModelSpec:
        """A copy with new widths for the named weighted layers (validated again).

        Raises:
            ValueError: a name is not a weighted layer of this model.
        """
        unknown = sorted(set(widths) - set(self.widths()))
        if unknown:
            raise ValueError(f"{unknown} are not weighted layers; weighted layers: {list(self.widths())}")
        layers: list[dict[str, Any]] = []
        for layer in self.layers:
            data = layer.model_dump()
            name = layer.key
            if name in widths:
                key = "units" if isinstance(layer, DenseLayer) else "filters"
                data[key] = int(widths[name])
            layers.append(data)
        return ModelSpec.model_validate({"input_shape": self.input_shape, "layers": layers})

    def with_layer(self, index: int, **changes: Any) -> ModelSpec:
        """A copy with fields of one layer changed (validated again)."""
        layers = self.model_dump()["layers"]
        layers[index].update(changes)
        return ModelSpec.model_validate({"input_shape": self.input_shape, "layers": layers})
