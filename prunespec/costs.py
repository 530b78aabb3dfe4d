"""Parameters and FLOPs of every layer of a model spec, computed from the spec alone.

Conventions (inference, one example, batch axis excluded):

* FLOPs count 2 per multiply-add in ``dense``, ``conv2d``, ``conv2d_transpose``, ``depthwise_conv2d``
  and ``separable_conv2d``:

  - ``dense`` does ``in · out`` multiply-adds;
  - ``conv2d`` does ``out_h · out_w · kh · kw · c_in · c_out`` multiply-adds: the full kernel at every
    output position, zero padding included, as TensorFlow's profiler counts ``Conv2D``;
  - ``conv2d_transpose`` does ``in_h · in_w · kh · kw · c_in · c_out`` multiply-adds: every input
    position scatters a full kernel (for ``same`` padding this is what TensorFlow's profiler counts
    for ``Conv2DBackpropInput``);
  - ``depthwise_conv2d`` does ``out_h · out_w · kh · kw · c`` multiply-adds (one kernel per channel,
    as the profiler counts ``DepthwiseConv2dNative``);
  - ``separable_conv2d`` does its depthwise part, ``out_h · out_w · kh · kw · c_in``, then its
    pointwise part, ``out_h · out_w · c_in · c_out``.

* A bias add costs 1 FLOP per output element.
* ``batch_norm`` costs 2 FLOPs per element (at inference one scale and one shift).
* Activations cost, per element (``ACTIVATION_FLOPS``): ``linear`` 0; ``relu``, ``relu6``,
  ``leaky_relu``, ``tanh`` and ``sigmoid`` 1; ``swish``/``silu`` 2 (a sigmoid and a product);
  ``gelu`` 2 and ``hard_swish`` 3 (the elementwise steps of their usual forms); ``softmax`` 3 (an
  exponential, a share of the sum and a division). This holds both for standalone ``activation``
  layers and for a weighted layer's own activation.
* ``max_pool`` and ``avg_pool`` cost ``pool_h · pool_w`` FLOPs per output element; ``global_avg_pool``
  and ``global_max_pool`` cost one FLOP per input element (the whole image is the window).
* ``add`` and ``multiply`` cost ``inputs − 1`` FLOPs per output element.
* ``flatten``, ``dropout``, ``reshape``, ``concatenate``, ``zero_padding2d`` and ``upsampling2d`` only
  move values: 0.

Parameters: ``dense`` has ``in · out`` weights (+ ``out`` biases), ``conv2d`` and ``conv2d_transpose``
have ``kh · kw · c_in · c_out`` (+ ``c_out`` biases), ``depthwise_conv2d`` has ``kh · kw · c`` (+ ``c``),
``separable_conv2d`` has ``kh · kw · c_in + c_in · c_out`` (+ ``c_out``), ``batch_norm`` has ``4 · C``
(gamma, beta, moving mean and moving variance, as Keras's ``count_params`` counts them), every other
layer 0.

This module never imports TensorFlow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from prunespec.graph import infer_graph
from prunespec.layers import (
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
    ModelSpec,
    MultiplyLayer,
    ReshapeLayer,
    SeparableConv2DLayer,
    Shape,
    UpSampling2DLayer,
    ZeroPadding2DLayer,
)

#: FLOPs per element of each activation.
ACTIVATION_FLOPS: dict[str, int] = {
    "linear": 0,
    "relu": 1,
    "relu6": 1,
    "leaky_relu": 1,
    "tanh": 1,
    "sigmoid": 1,
    "swish": 2,
    "silu": 2,
    "gelu": 2,
    "hard_swish": 3,
    "softmax": 3,
}

#: Layers that only move values.
_FREE = (FlattenLayer, DropoutLayer, ReshapeLayer, ConcatenateLayer, ZeroPadding2DLayer, UpSampling2DLayer)


@dataclass(frozen=True)
class LayerCost:
    """Parameters and FLOPs of one layer.

    Args:
        name: the layer's name in the spec.
        type: the layer's type (``dense``, ``conv2d``, ...).
        params: number of parameters, trainable or not.
        flops: floating-point operations for one example at inference.
    """

    name: str
    type: str
    params: int
    flops: int


@dataclass(frozen=True)
class ModelCost:
    """Per-layer and total parameters and FLOPs of a model.

    Args:
        layers: one cost per spec layer, in order.
        params: sum of the layers' parameters.
        flops: sum of the layers' FLOPs.
    """

    layers: list[LayerCost]
    params: int
    flops: int

    def as_dict(self) -> dict[str, Any]:
        """The costs as plain JSON-ready types.

        Returns:
            ``{"params": int, "flops": int, "layers": [{"name", "type", "params", "flops"}, ...]}``.
        """
        return {
            "params": self.params,
            "flops": self.flops,
            "layers": [
                {"name": cost.name, "type": cost.type, "params": cost.params, "flops": cost.flops}
                for cost in self.layers
            ],
        }


def layer_cost(layer: Layer, input_shape: Shape | tuple[Shape, ...], output_shape: Shape) -> LayerCost:
    """Parameters and FLOPs of one layer given its input and output shapes (batch axis excluded).

    Args:
        layer: a layer of the layer language.
        input_shape: the shape the layer receives, or one shape per input for ``add``, ``multiply``
            and ``concatenate``.
        output_shape: the shape the layer yields (as ``prunespec.layers.layer_output_shape`` computes it).

    Returns:
        The layer's cost; its name is the layer's name, or its type where it has none.

    Raises:
        TypeError: the layer is not one the layer language knows.
    """
    shapes = _as_shapes(input_shape)
    shape_in = shapes[0]
    out_elements = math.prod(output_shape)
    params = 0
    flops: int
    if isinstance(layer, DenseLayer):
        fan_in = shape_in[-1]
        params = fan_in * layer.units + (layer.units if layer.use_bias else 0)
        flops = 2 * fan_in * layer.units
        flops += _bias_and_activation(out_elements, layer.use_bias, layer.activation)
    elif isinstance(layer, Conv2DLayer | Conv2DTransposeLayer):
        (kh, kw), c_in, c_out = layer.kernel_size, shape_in[-1], layer.filters
        kernel = kh * kw * c_in * c_out
        params = kernel + (c_out if layer.use_bias else 0)
        if isinstance(layer, Conv2DLayer):
            positions = output_shape[0] * output_shape[1]
        else:
            positions = shape_in[0] * shape_in[1]
        flops = 2 * positions * kernel + _bias_and_activation(out_elements, layer.use_bias, layer.activation)
    elif isinstance(layer, DepthwiseConv2DLayer | SeparableConv2DLayer):
        (kh, kw), c_in, c_out = layer.kernel_size, shape_in[-1], output_shape[-1]
        positions = output_shape[0] * output_shape[1]
        pointwise = c_in * c_out if isinstance(layer, SeparableConv2DLayer) else 0
        params = kh * kw * c_in + pointwise + (c_out if layer.use_bias else 0)
        flops = 2 * positions * (kh * kw * c_in + pointwise)
        flops += _bias_and_activation(out_elements, layer.use_bias, layer.activation)
    elif isinstance(layer, BatchNormLayer):
        params = 4 * shape_in[-1]
        flops = 2 * out_elements
    elif isinstance(layer, MaxPoolLayer | AvgPoolLayer):
        flops = layer.pool_size[0] * layer.pool_size[1] * out_elements
    elif isinstance(layer, GlobalAvgPoolLayer | GlobalMaxPoolLayer):
        flops = math.prod(shape_in)
    elif isinstance(layer, AddLayer | MultiplyLayer):
        flops = (len(shapes) - 1) * out_elements
    elif isinstance(layer, ActivationLayer):
        flops = ACTIVATION_FLOPS[layer.activation] * out_elements
    elif isinstance(layer, _FREE):
        flops = 0
    else:
        raise TypeError(f"no cost model for {type(layer).__name__}")
    return LayerCost(name=layer.name or layer.type, type=layer.type, params=params, flops=flops)


def _as_shapes(input_shape: Shape | tuple[Shape, ...]) -> tuple[Shape, ...]:
    """One shape per input, whether one shape or several were given."""
    if input_shape and all(isinstance(d, tuple | list) for d in input_shape):
        return tuple(tuple(int(x) for x in shape) for shape in input_shape)  # type: ignore[union-attr]
    return (tuple(int(d) for d in input_shape),)  # type: ignore[arg-type]


def _bias_and_activation(out_elements: int, use_bias: bool, activation: str) -> int:
    """FLOPs of a weighted layer's bias add and own activation."""
    return (out_elements if use_bias else 0) + ACTIVATION_FLOPS[activation] * out_elements


def layer_costs(spec: ModelSpec) -> list[LayerCost]:
    """Parameters and FLOPs of every layer of a model.

    Args:
        spec: the architecture.

    Returns:
        One cost per spec layer, in order.

    Raises:
        SpecShapeError: a layer does not fit its input (only for specs that bypassed validation).
        TypeError: a layer is not one the layer language knows.
    """
    input_shapes, output_shapes = infer_graph(spec.input_shape, spec.layers)
    return [
        layer_cost(layer, shapes_in, shape_out)
        for layer, shapes_in, shape_out in zip(spec.layers, input_shapes, output_shapes, strict=True)
    ]


def model_cost(spec: ModelSpec) -> ModelCost:
    """Per-layer and total parameters and FLOPs of a model.

    Args:
        spec: the architecture.

    Returns:
        The layers' costs in order with their sums.

    Raises:
        SpecShapeError: a layer does not fit its input (only for specs that bypassed validation).
        TypeError: a layer is not one the layer language knows.
    """
    costs = layer_costs(spec)
    return ModelCost(
        layers=costs,
        params=sum(cost.params for cost in costs),
        flops=sum(cost.flops for cost in costs),
    )


def format_count(value: int) -> str:
    """A parameter or FLOP count as people read it: ``12,345`` below a million, else ``1.09e12``.

    Args:
        value: the count.

    Returns:
        Thousands separated below a million; three significant digits and a plain exponent above.
    """
    if abs(value) < 1_000_000:
        return f"{value:,}"
    mantissa, exponent = f"{value:.3g}".split("e")
    return f"{mantissa}e{int(exponent)}"
