"""Specs from Keras models: any Keras 3 Sequential or Functional model of supported layers.

The reader follows the model's graph from its output back to its input, so the spec lists every
layer after its inputs and leaves out layers that do not reach the output. Nested models are
flattened (their layers join the outer graph); ``InputLayer`` becomes the spec's ``input``; Keras
names are made to fit the spec's name pattern (``LAYER_NAME_PATTERN``) and kept unique. A layer the
language cannot express raises ``UnsupportedLayerError`` naming the layer and why.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from prunespec.layers import LAYER_NAME_PATTERN, MODEL_INPUT, ModelSpec

#: Spec activation for each Keras activation name the language knows.
SPEC_ACTIVATION = {
    "relu": "relu",
    "relu6": "relu6",
    "tanh": "tanh",
    "sigmoid": "sigmoid",
    "linear": "linear",
    "silu": "silu",
    "swish": "swish",
    "hard_silu": "hard_swish",
    "hard_swish": "hard_swish",
    "gelu": "gelu",
    "leaky_relu": "leaky_relu",
    "softmax": "softmax",
}


class UnsupportedLayerError(TypeError):
    """A Keras layer (or model) the layer language cannot express."""


@dataclass(frozen=True)
class ReadModel:
    """A Keras model read as a spec, with its weights by spec layer name.

    Args:
        spec: the model's architecture.
        weights: every weighted layer's weights, keyed by its name in ``spec``.
        names: the spec name of every Keras layer read, keyed by the Keras layer's name.
    """

    spec: ModelSpec
    weights: dict[str, list[np.ndarray]]
    names: dict[str, str]


def _unsupported(layer: keras.layers.Layer, why: str) -> UnsupportedLayerError:
    return UnsupportedLayerError(f"layer '{layer.name}' ({type(layer).__name__}): {why}")


def _pair(value: Any) -> tuple[int, int]:
    a, b = value
    return (int(a), int(b))


def _activation(layer: keras.layers.Layer, value: Any) -> str:
    if isinstance(value, str) and value in SPEC_ACTIVATION:
        return SPEC_ACTIVATION[value]
    raise _unsupported(layer, f"activation {value!r} is not one of {sorted(set(SPEC_ACTIVATION.values()))}")


def _channels_last(layer: keras.layers.Layer, config: dict[str, Any]) -> None:
    if config.get("data_format", "channels_last") not in (None, "channels_last"):
        raise _unsupported(layer, f"data_format '{config['data_format']}'; only channels_last is supported")


def _window(layer: keras.layers.Layer, config: dict[str, Any]) -> dict[str, Any]:
    """Kernel, strides, padding, activation and bias of a convolution, checked."""
    _channels_last(layer, config)
    if _pair(config.get("dilation_rate", (1, 1))) != (1, 1):
        raise _unsupported(layer, f"dilation_rate {tuple(config['dilation_rate'])}; only 1 is supported")
    if config.get("groups", 1) != 1:
        raise _unsupported(layer, f"groups={config['groups']}; only 1 is supported")
    if config.get("depth_multiplier", 1) != 1:
        raise _unsupported(layer, f"depth_multiplier={config['depth_multiplier']}; only 1 is supported")
    if config.get("output_padding") is not None:
        raise _unsupported(layer, "output_padding is not supported")
    if config["padding"] not in ("valid", "same"):
        raise _unsupported(layer, f"padding '{config['padding']}'; only valid and same are supported")
    return {
        "kernel_size": _pair(config["kernel_size"]),
        "strides": _pair(config["strides"]),
        "padding": config["padding"],
        "activation": _activation(layer, config["activation"]),
        "use_bias": bool(config["use_bias"]),
    }


def _relu(layer: keras.layers.Layer, config: dict[str, Any]) -> dict[str, Any]:
    max_value, slope, threshold = config.get("max_value"), config["negative_slope"], config["threshold"]
    if threshold == 0 and slope == 0 and max_value is None:
        return {"type": "activation", "activation": "relu"}
    if threshold == 0 and slope == 0 and max_value is not None and float(max_value) == 6.0:
        return {"type": "activation", "activation": "relu6"}
    raise _unsupported(
        layer,
        f"ReLU with max_value={max_value}, negative_slope={slope}, threshold={threshold}; "
        "only plain ReLU and max_value=6 (relu6) are supported",
    )


def _dense(layer: keras.layers.Layer, config: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "dense",
        "units": int(config["units"]),
        "activation": _activation(layer, config["activation"]),
        "use_bias": bool(config["use_bias"]),
    }


def _conv(kind: str) -> Callable[[keras.layers.Layer, dict[str, Any]], dict[str, Any]]:
    def read(layer: keras.layers.Layer, config: dict[str, Any]) -> dict[str, Any]:
        fields = {"type": kind, **_window(layer, config)}
        if kind != "depthwise_conv2d":
            fields["filters"] = int(config["filters"])
        return fields

    return read


def _batch_norm(layer: keras.layers.Layer, config: dict[str, Any]) -> dict[str, Any]:
    axis = config["axis"]
    axes = axis if isinstance(axis, list | tuple) else [axis]
    rank = len(layer.input.shape) - 1 if hasattr(layer, "input") else 1
    if [a % (rank + 1) for a in axes] != [rank]:
        raise _unsupported(layer, f"axis {axis}; only the channel axis (-1) is supported")
    if not (config["center"] and config["scale"]):
        raise _unsupported(layer, "center=False or scale=False; the language's batch_norm has both")
    return {"type": "batch_norm", "momentum": float(config["momentum"]), "epsilon": float(config["epsilon"])}


def _pool(kind: str) -> Callable[[keras.layers.Layer, dict[str, Any]], dict[str, Any]]:
    def read(layer: keras.layers.Layer, config: dict[str, Any]) -> dict[str, Any]:
        _channels_last(layer, config)
        return {
            "type": kind,
            "pool_size": _pair(config["pool_size"]),
            "strides": _pair(config["strides"] or config["pool_size"]),
            "padding": config["padding"],
        }

    return read


def _global_pool(kind: str) -> Callable[[keras.layers.Layer, dict[str, Any]], dict[str, Any]]:
    def read(layer: keras.layers.Layer, config: dict[str, Any]) -> dict[str, Any]:
        _channels_last(layer, config)
        return {"type": kind, "keepdims": bool(config.get("keepdims", False))}

    return read


def _zero_padding(layer: keras.layers.Layer, config: dict[str, Any]) -> dict[str, Any]:
    _channels_last(layer, config)
    (top, bottom), (left, right) = config["padding"]
    return {"type": "zero_padding2d", "padding": ((int(top), int(bottom)), (int(left), int(right)))}


def _upsampling(layer: keras.layers.Layer, config: dict[str, Any]) -> dict[str, Any]:
    _channels_last(layer, config)
    if config.get("interpolation", "nearest") != "nearest":
        raise _unsupported(layer, f"interpolation '{config['interpolation']}'; only nearest is supported")
    return {"type": "upsampling2d", "size": _pair(config["size"])}


def _concatenate(layer: keras.layers.Layer, config: dict[str, Any]) -> dict[str, Any]:
    rank = len(layer.output.shape) - 1
    if config["axis"] not in (-1, rank):
        raise _unsupported(layer, f"axis {config['axis']}; only the channel axis (-1) is supported")
    return {"type": "concatenate", "axis": -1}


def _softmax(layer: keras.layers.Layer, config: dict[str, Any]) -> dict[str, Any]:
    if config.get("axis", -1) != -1:
        raise _unsupported(layer, f"axis {config['axis']}; only the last axis is supported")
    return {"type": "activation", "activation": "softmax"}


def _leaky_relu(layer: keras.layers.Layer, config: dict[str, Any]) -> dict[str, Any]:
    if abs(float(config["negative_slope"]) - 0.2) > 1e-9:
        raise _unsupported(layer, f"negative_slope {config['negative_slope']}; only Keras's default 0.2")
    return {"type": "activation", "activation": "leaky_relu"}


def _flatten(layer: keras.layers.Layer, config: dict[str, Any]) -> dict[str, Any]:
    _channels_last(layer, config)
    return {"type": "flatten"}


def _activation_layer(layer: keras.layers.Layer, config: dict[str, Any]) -> dict[str, Any]:
    return {"type": "activation", "activation": _activation(layer, config["activation"])}


#: How each supported Keras layer class reads (exact classes: a subclass may change the arithmetic).
_READERS: list[tuple[type, Callable[[keras.layers.Layer, dict[str, Any]], dict[str, Any]]]] = [
    (keras.layers.Dense, _dense),
    (keras.layers.Conv2DTranspose, _conv("conv2d_transpose")),
    (keras.layers.DepthwiseConv2D, _conv("depthwise_conv2d")),
    (keras.layers.SeparableConv2D, _conv("separable_conv2d")),
    (keras.layers.Conv2D, _conv("conv2d")),
    (keras.layers.BatchNormalization, _batch_norm),
    (keras.layers.MaxPooling2D, _pool("max_pool")),
    (keras.layers.AveragePooling2D, _pool("avg_pool")),
    (keras.layers.GlobalAveragePooling2D, _global_pool("global_avg_pool")),
    (keras.layers.GlobalMaxPooling2D, _global_pool("global_max_pool")),
    (keras.layers.ZeroPadding2D, _zero_padding),
    (keras.layers.UpSampling2D, _upsampling),
    (keras.layers.Reshape, lambda _, c: {"type": "reshape", "target_shape": tuple(c["target_shape"])}),
    (keras.layers.Flatten, _flatten),
    (keras.layers.Dropout, lambda _, c: {"type": "dropout", "rate": float(c["rate"])}),
    (keras.layers.Activation, _activation_layer),
    (keras.layers.ReLU, _relu),
    (keras.layers.LeakyReLU, _leaky_relu),
    (keras.layers.Softmax, _softmax),
    (keras.layers.Add, lambda _, c: {"type": "add"}),
    (keras.layers.Multiply, lambda _, c: {"type": "multiply"}),
    (keras.layers.Concatenate, _concatenate),
]


def layer_to_dict(layer: keras.layers.Layer) -> dict[str, Any]:
    """The spec fields of one Keras layer (its name as Keras has it, no inputs).

    Raises:
        UnsupportedLayerError: the layer is not one the layer language knows, or uses an option it
            cannot express (the message names the layer and why).
    """
    read = dict(_READERS).get(type(layer))
    if read is not None:
        return {"name": layer.name, **read(layer, layer.get_config())}
    for cls, _ in _READERS:
        if isinstance(layer, cls):
            raise _unsupported(layer, f"a subclass of {cls.__name__} (custom layers are not supported)")
    known = sorted(cls.__name__ for cls, _ in _READERS)
    raise _unsupported(layer, f"not in prunelab's layer language; supported layers: {known}")


def _sanitise(name: str, taken: set[str]) -> str:
    """A name that fits ``LAYER_NAME_PATTERN``, is not ``input`` and is not taken yet."""
    clean = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if not clean or not clean[0].isalpha():
        clean = f"layer_{clean}"
    clean = clean[:60]
    candidate, suffix = clean, 1
    while candidate in taken or candidate == MODEL_INPUT or not re.match(LAYER_NAME_PATTERN, candidate):
        suffix += 1
        candidate = f"{clean[:56]}_{suffix}"
    taken.add(candidate)
    return candidate


class _Reader:
    """Walks a Keras graph from the output back, emitting spec rows in an order that respects inputs."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.weights: dict[str, list[np.ndarray]] = {}
        self.names: dict[str, str] = {}
        self.taken: set[str] = set()
        self.read_layers: set[int] = set()

    def model(self, model: keras.Model, feeds: list[str]) -> list[str]:
        """Read one (possibly nested) model whose inputs are the given spec names; its output names."""
        inputs, outputs = _io(model)
        if len(inputs) != len(feeds):
            raise UnsupportedLayerError(
                f"model '{model.name}' takes {len(inputs)} inputs, given {len(feeds)}"
            )
        memo: dict[int, str] = {id(tensor): feed for tensor, feed in zip(inputs, feeds, strict=True)}
        return [self.tensor(tensor, memo) for tensor in outputs]

    def tensor(self, tensor: Any, memo: dict[int, str]) -> str:
        """The spec name of the layer that yields a symbolic tensor, reading it (and its inputs) once."""
        if id(tensor) in memo:
            return memo[id(tensor)]
        operation, node_index, tensor_index = tensor._keras_history
        if isinstance(operation, keras.layers.InputLayer):
            raise UnsupportedLayerError(f"input '{operation.name}' is not an input of the model being read")
        node = operation._inbound_nodes[node_index]
        sources = [self.tensor(source, memo) for source in node.input_tensors]
        if isinstance(operation, keras.Model):
            name = self.model(operation, sources)[tensor_index]
        else:
            name = self.layer(operation, sources)
        memo[id(tensor)] = name
        return name

    def layer(self, layer: keras.layers.Layer, sources: list[str]) -> str:
        if id(layer) in self.read_layers:
            raise _unsupported(layer, "called more than once (shared weights), which a spec cannot express")
        self.read_layers.add(id(layer))
        row = layer_to_dict(layer)
        name = _sanitise(layer.name, self.taken)
        self.rows.append({**row, "name": name, "inputs": sources})
        self.names[layer.name] = name
        if layer.weights:
            self.weights[name] = [np.array(w) for w in layer.get_weights()]
        return name


def _io(model: keras.Model) -> tuple[list[Any], list[Any]]:
    """A model's symbolic inputs and outputs, or a clear error where it has none yet."""
    try:
        inputs, outputs = list(model.inputs), list(model.outputs)
    except (AttributeError, ValueError):
        inputs, outputs = [], []
    if not inputs or not outputs:
        raise UnsupportedLayerError(
            f"model '{model.name}' has no input shape yet: start it with keras.Input(shape) or build it"
        )
    return inputs, outputs


def read_model(model: keras.Model) -> ReadModel:
    """Read a Keras 3 Sequential or Functional model as a spec, with its weights by spec name.

    Args:
        model: one input, one output, layers of the language (nested models are flattened).

    Returns:
        The spec, the weights of its weighted layers and the spec name of every Keras layer read.

    Raises:
        UnsupportedLayerError: naming the first layer the language cannot express and why, or a model
            with several inputs or outputs, or without an input shape.
        pydantic.ValidationError: the graph read is not a valid spec.
    """
    inputs, outputs = _io(model)
    if len(inputs) != 1 or len(outputs) != 1:
        raise UnsupportedLayerError(
            f"model '{model.name}' has {len(inputs)} inputs and {len(outputs)} outputs; "
            "one of each is supported"
        )
    if any(dim is None for dim in inputs[0].shape[1:]):
        raise UnsupportedLayerError(
            f"model '{model.name}' has input shape {tuple(inputs[0].shape[1:])}; every size but the "
            "batch must be known"
        )
    reader = _Reader()
    reader.model(model, [MODEL_INPUT])
    if not reader.rows:
        raise UnsupportedLayerError(f"model '{model.name}' has no layers between its input and its output")
    input_shape = tuple(int(d) for d in inputs[0].shape[1:])
    spec = ModelSpec.model_validate({"input_shape": input_shape, "layers": reader.rows})
    return ReadModel(spec=spec, weights=reader.weights, names=reader.names)


def model_to_spec(model: keras.Model) -> ModelSpec:
    """Read a Keras 3 Sequential or Functional model (e.g. after surgery) back as a spec.

    Raises:
        UnsupportedLayerError: naming the first layer the language cannot express and why.
        pydantic.ValidationError: the graph read is not a valid spec.
    """
    return read_model(model).spec
