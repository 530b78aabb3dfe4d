"""Representation bits of a model per TFLite format (Liang et al.: compare accuracy against bits).

Two counts:

:func:`nominal_bits` follows a fixed convention from the architecture alone, so it can be computed for
any cycle and format without converting anything:

- Parameters are the model's, as ``prunespec.costs`` counts them: every weighted layer's kernel and bias,
  and a batch norm's four per-channel vectors (scale, offset, moving mean, moving variance).
- ``float32``: 32 bits per parameter. ``float16``: 16 bits per parameter. No side data.
- ``int8_dynamic``: kernels of at least :data:`DYNAMIC_MIN_ELEMENTS` elements take 8 bits per weight
  plus one quantisation group per output unit/channel; every other parameter stays 32-bit float (this
  is what TFLite's dynamic-range quantiser does).
- ``int8_full``: kernels take 8 bits per weight plus one group per output unit/channel; biases and
  batch-norm vectors take 32 bits (int32) per value plus one group per channel.
- A quantisation group is what the TFLite flatbuffer stores beside quantised values: one float32
  scale (:data:`SCALE_BITS`) and one int64 zero point (:data:`ZERO_POINT_BITS`).

Weights stay dense in this count: a zero weight costs as much as any other.

:func:`stored_bits` reads a converted flatbuffer and counts what it actually holds: every constant
tensor's data (sparse-format index arrays included, so zeros pruned by connection pruning and stored
with ``sparse_weights`` do save bits), plus the quantisation groups of every tensor, activations
included. It differs from the nominal count where the converter rewrites the model: batch norms
folded into the neighbouring convolution, all-zero biases dropped, small shape constants added.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from prunespec.layers import (
    BatchNormLayer,
    Conv2DLayer,
    Conv2DTransposeLayer,
    DenseLayer,
    DepthwiseConv2DLayer,
    ModelSpec,
    SeparableConv2DLayer,
)

if TYPE_CHECKING:
    import keras

#: The TFLite formats prunelab converts to, in order of decreasing weight precision.
FORMATS: tuple[str, ...] = ("float32", "float16", "int8_dynamic", "int8_full")
#: Bits of the float32 scale stored per quantisation group.
SCALE_BITS = 32
#: Bits of the int64 zero point stored per quantisation group.
ZERO_POINT_BITS = 64
#: TFLite's dynamic-range quantiser leaves kernels with fewer elements in float32.
DYNAMIC_MIN_ELEMENTS = 1024


@dataclass(frozen=True)
class TensorBits:
    """The bits one parameter tensor takes in one format.

    Attributes:
        layer: the layer (nominal) or the flatbuffer tensor's name (stored).
        role: "kernel", "bias" or "batch_norm" (nominal), "constant" or "activation" (stored).
        elements: values the tensor holds (its full dense size).
        value_bits: bits of the values themselves (for a sparse tensor: the stored values and indices).
        quantization_groups: scale/zero-point pairs stored beside the values (0 when not quantised).
    """

    layer: str
    role: str
    elements: int
    value_bits: int
    quantization_groups: int = 0

    @property
    def overhead_bits(self) -> int:
        """Bits of the quantisation scales and zero points."""
        return self.quantization_groups * (SCALE_BITS + ZERO_POINT_BITS)

    @property
    def total_bits(self) -> int:
        return self.value_bits + self.overhead_bits


@dataclass(frozen=True)
class ModelBits:
    """Representation bits of a whole model in one format.

    Attributes:
        fmt: the format.
        tensors: one entry per parameter tensor (nominal) or per stored tensor (stored).
    """

    fmt: str
    tensors: tuple[TensorBits, ...]

    @property
    def params(self) -> int:
        """Parameters counted (activation entries of a stored count excluded)."""
        return sum(t.elements for t in self.tensors if t.role != "activation")

    @property
    def value_bits(self) -> int:
        return sum(t.value_bits for t in self.tensors)

    @property
    def overhead_bits(self) -> int:
        return sum(t.overhead_bits for t in self.tensors)

    @property
    def total_bits(self) -> int:
        return self.value_bits + self.overhead_bits

    @property
    def bits_per_param(self) -> float:
        """Total bits over parameters (e.g. 32.0 for float32)."""
        return self.total_bits / self.params if self.params else 0.0

    def summary(self) -> dict[str, Any]:
        """JSON-ready totals and per-tensor entries."""
        return {
            "format": self.fmt,
            "params": self.params,
            "value_bits": self.value_bits,
            "overhead_bits": self.overhead_bits,
            "total_bits": self.total_bits,
            "bits_per_param": self.bits_per_param,
            "tensors": [
                {
                    "layer": t.layer,
                    "role": t.role,
                    "elements": t.elements,
                    "value_bits": t.value_bits,
                    "quantization_groups": t.quantization_groups,
                }
                for t in self.tensors
            ],
        }


# --------------------------------------------------------------------------------------------- nominal


def _parameter_tensors(spec: ModelSpec) -> Iterator[tuple[str, str, int, int]]:
    """(layer, role, elements, channels) of every parameter tensor, in layer order."""
    for layer, shapes_in in zip(spec.layers, spec.all_input_shapes(), strict=True):
        name, shape_in = layer.name or layer.type, shapes_in[0]
        if isinstance(layer, DenseLayer):
            yield name, "kernel", shape_in[-1] * layer.units, layer.units
            if layer.use_bias:
                yield name, "bias", layer.units, layer.units
        elif isinstance(layer, Conv2DLayer | Conv2DTransposeLayer):
            kernel = math.prod(layer.kernel_size) * shape_in[-1] * layer.filters
            yield name, "kernel", kernel, layer.filters
            if layer.use_bias:
                yield name, "bias", layer.filters, layer.filters
        elif isinstance(layer, DepthwiseConv2DLayer | SeparableConv2DLayer):
            channels = shape_in[-1]
            yield name, "kernel", math.prod(layer.kernel_size) * channels, channels
            width = channels
            if isinstance(layer, SeparableConv2DLayer):
                width = layer.filters
                yield name, "kernel", channels * width, width
            if layer.use_bias:
                yield name, "bias", width, width
        elif isinstance(layer, BatchNormLayer):
            yield name, "batch_norm", 4 * shape_in[-1], shape_in[-1]


def _nominal_tensor(fmt: str, layer: str, role: str, elements: int, channels: int) -> TensorBits:
    if fmt == "float32":
        return TensorBits(layer, role, elements, 32 * elements)
    if fmt == "float16":
        return TensorBits(layer, role, elements, 16 * elements)
    if fmt == "int8_dynamic":
        if role == "kernel" and elements >= DYNAMIC_MIN_ELEMENTS:
            return TensorBits(layer, role, elements, 8 * elements, channels)
        return TensorBits(layer, role, elements, 32 * elements)
    if role == "kernel":  # int8_full
        return TensorBits(layer, role, elements, 8 * elements, channels)
    return TensorBits(layer, role, elements, 32 * elements, channels)


def nominal_bits(model: ModelSpec | keras.Model, fmt: str) -> ModelBits:
    """Representation bits of a model in a format, by the convention in this module's docstring.

    Args:
        model: the architecture, or a Keras model in the layer language (read with
            ``build.model_to_spec``).
        fmt: "float32", "float16", "int8_dynamic" or "int8_full".

    Returns:
        Bits per parameter tensor and in total.

    Raises:
        ValueError: ``fmt`` is unknown.
        TypeError: a Keras model has a layer outside the layer language.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format '{fmt}'; formats: {list(FORMATS)}")
    if not isinstance(model, ModelSpec):
        from worker.engine.build import model_to_spec

        model = model_to_spec(model)
    return ModelBits(fmt, tuple(_nominal_tensor(fmt, *entry) for entry in _parameter_tensors(model)))


# --------------------------------------------------------------------------------------------- stored


def _length(values: Any) -> int:
    """Length of an optional flatbuffer vector (None, list or NumPy array)."""
    return 0 if values is None else len(values)


def _index_vector_bits(vector: Any) -> int:
    """Bits of a sparsity index vector (Int32Vector, Uint16Vector or Uint8Vector)."""
    if vector is None or getattr(vector, "values", None) is None:
        return 0
    values = np.asarray(vector.values)
    return int(values.size * values.dtype.itemsize * 8)


def _sparsity_bits(sparsity: Any) -> int:
    """Bits of a sparse tensor's metadata: traversal order, block map and per-dimension indices."""
    if sparsity is None:
        return 0
    bits = 32 * (_length(sparsity.traversalOrder) + _length(sparsity.blockMap))
    for dimension in sparsity.dimMetadata if sparsity.dimMetadata is not None else []:
        bits += 32  # the dense size of a dimension
        bits += _index_vector_bits(dimension.arraySegments) + _index_vector_bits(dimension.arrayIndices)
    return bits


def stored_bits(model_bytes: bytes, fmt: str = "stored") -> ModelBits:
    """What a TFLite flatbuffer holds: constant tensors' data and every tensor's quantisation groups.

    Args:
        model_bytes: a ``.tflite`` flatbuffer (e.g. from ``tflite.convert``).
        fmt: the label the result carries. Default "stored".

    Returns:
        One entry per constant tensor (role "constant": its buffer's bits plus any sparse index
        arrays) and per quantised non-constant tensor (role "activation": its quantisation groups).
    """
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(model_bytes), 0)
    tensors: list[TensorBits] = []
    for subgraph in model.subgraphs or []:
        for tensor in subgraph.tensors or []:
            buffer = model.buffers[tensor.buffer] if model.buffers else None
            data_bytes = 0
            if buffer is not None:
                if buffer.data is not None:
                    data_bytes = len(buffer.data)
                elif buffer.offset:
                    data_bytes = int(buffer.size)
            quantization = tensor.quantization
            groups = 0 if quantization is None or quantization.scale is None else len(quantization.scale)
            name = tensor.name.decode() if isinstance(tensor.name, bytes) else str(tensor.name)
            shape = [] if tensor.shape is None else [int(d) for d in tensor.shape]
            if data_bytes:
                elements = math.prod(shape)
                bits = 8 * data_bytes + _sparsity_bits(tensor.sparsity)
                tensors.append(TensorBits(name, "constant", elements, bits, groups))
            elif groups:
                tensors.append(TensorBits(name, "activation", 0, 0, groups))
    return ModelBits(fmt, tuple(tensors))
