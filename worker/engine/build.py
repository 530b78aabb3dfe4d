"""Keras models from specs, and specs back from (pruned) Keras models."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import keras
import numpy as np
from keras import ops

from prunespec.criteria import bn_after
from prunespec.layers import (
    ActivationLayer,
    AvgPoolLayer,
    BatchNormLayer,
    Conv2DLayer,
    Conv2DTransposeLayer,
    DenseLayer,
    DropoutLayer,
    FlattenLayer,
    Layer,
    MaxPoolLayer,
    ModelSpec,
)
from prunespec.spec import TrainingSpec

#: Axis of a kernel that indexes the layer's output units, by layer type.
UNIT_AXIS = {"dense": 1, "conv2d": 3, "conv2d_transpose": 2}
#: Axis of a kernel that indexes the layer's input units, by layer type.
INPUT_AXIS = {"dense": 0, "conv2d": 2, "conv2d_transpose": 3}


@keras.saving.register_keras_serializable(package="prunelab")
class KernelPenalty(keras.regularizers.Regularizer):
    """L1 + L2 + group lasso on a kernel.

    The group-lasso term (Liang et al.) sums, over output units, the L2 norm of each unit's incoming
    weights, pushing whole units toward zero rather than single weights.

    Args:
        l1: weight of sum |w|. Default 0.
        l2: weight of sum w². Default 0.
        group_lasso: weight of sum over units of ||w_unit||₂. Default 0.
        unit_axis: kernel axis that indexes output units (see ``UNIT_AXIS``). Default -1.
    """

    def __init__(self, l1: float = 0.0, l2: float = 0.0, group_lasso: float = 0.0, unit_axis: int = -1):
        self.l1 = float(l1)
        self.l2 = float(l2)
        self.group_lasso = float(group_lasso)
        self.unit_axis = int(unit_axis)

    def __call__(self, x: Any) -> Any:
        total = ops.convert_to_tensor(0.0, dtype=x.dtype)
        if self.l1:
            total = total + self.l1 * ops.sum(ops.abs(x))
        if self.l2:
            total = total + self.l2 * ops.sum(ops.square(x))
        if self.group_lasso:
            axis = self.unit_axis % len(x.shape)
            other = tuple(a for a in range(len(x.shape)) if a != axis)
            total = total + self.group_lasso * ops.sum(ops.sqrt(ops.sum(ops.square(x), axis=other) + 1e-12))
        return total

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1, "l2": self.l2, "group_lasso": self.group_lasso, "unit_axis": self.unit_axis}


def _kernel_penalty(layer_type: str, training: TrainingSpec | None, prunable: bool) -> KernelPenalty | None:
    if training is None:
        return None
    group = training.group_lasso if prunable else 0.0
    if not (training.l1 or training.l2 or group):
        return None
    return KernelPenalty(training.l1, training.l2, group, UNIT_AXIS[layer_type])


def _activity_penalty(training: TrainingSpec | None, prunable: bool) -> keras.regularizers.Regularizer | None:
    if training is None or not prunable or not (training.activity_l1 or training.activity_l2):
        return None
    return keras.regularizers.L1L2(l1=training.activity_l1, l2=training.activity_l2)


def _gamma_penalty(training: TrainingSpec | None, prunable: bool) -> keras.regularizers.Regularizer | None:
    """Network Slimming's L1 penalty on a batch norm's γ (``training.bn_l1``), after pruned layers only."""
    if training is None or not prunable or not training.bn_l1:
        return None
    return keras.regularizers.L1(training.bn_l1)


def slimmed_batch_norms(spec: ModelSpec, pruned: Collection[str]) -> set[str]:
    """The batch norms right after the pruned layers: they get ``training.bn_l1`` on γ."""
    return {norm for name in pruned if (norm := bn_after(spec, name)) is not None}


def build_layer(
    layer: Layer, training: TrainingSpec | None = None, prunable: bool = False
) -> keras.layers.Layer:
    """One Keras layer for one spec layer, named as in the spec."""
    name = layer.name
    if isinstance(layer, DenseLayer):
        return keras.layers.Dense(
            layer.units,
            activation=layer.activation,
            use_bias=layer.use_bias,
            kernel_regularizer=_kernel_penalty("dense", training, prunable),
            activity_regularizer=_activity_penalty(training, prunable),
            name=name,
        )
    if isinstance(layer, Conv2DLayer | Conv2DTransposeLayer):
        cls = keras.layers.Conv2D if isinstance(layer, Conv2DLayer) else keras.layers.Conv2DTranspose
        return cls(
            layer.filters,
            layer.kernel_size,
            strides=layer.strides,
            padding=layer.padding,
            activation=layer.activation,
            use_bias=layer.use_bias,
            kernel_regularizer=_kernel_penalty(layer.type, training, prunable),
            activity_regularizer=_activity_penalty(training, prunable),
            name=name,
        )
    if isinstance(layer, BatchNormLayer):
        return keras.layers.BatchNormalization(
            momentum=layer.momentum,
            epsilon=layer.epsilon,
            gamma_regularizer=_gamma_penalty(training, prunable),
            name=name,
        )
    if isinstance(layer, MaxPoolLayer | AvgPoolLayer):
        pool = keras.layers.MaxPooling2D if isinstance(layer, MaxPoolLayer) else keras.layers.AveragePooling2D
        return pool(layer.pool_size, strides=layer.effective_strides, padding=layer.padding, name=name)
    if isinstance(layer, FlattenLayer):
        return keras.layers.Flatten(name=name)
    if isinstance(layer, DropoutLayer):
        return keras.layers.Dropout(layer.rate, name=name)
    if isinstance(layer, ActivationLayer):
        return keras.layers.Activation(layer.activation, name=name)
    raise TypeError(f"no Keras layer for {type(layer).__name__}")


def build_model(
    spec: ModelSpec, training: TrainingSpec | None = None, prunable: Collection[str] | None = None
) -> keras.Model:
    """A functional Keras model whose layers carry the spec's names.

    Args:
        spec: the architecture.
        training: adds its kernel and activity penalties when given. Default None (no penalties).
        prunable: layer names that get the group-lasso and activity penalties. Default: every prunable
            layer of the spec.

    Returns:
        An uncompiled ``keras.Model`` named ``prunelab``.
    """
    chosen = set(spec.prunable_names() if prunable is None else prunable)
    chosen |= slimmed_batch_norms(spec, chosen)  # a batch norm marked prunable gets training.bn_l1
    inputs = keras.Input(shape=tuple(spec.input_shape), name="input")
    x = inputs
    for layer in spec.layers:
        x = build_layer(layer, training, prunable=layer.name in chosen)(x)
    return keras.Model(inputs, x, name="prunelab")


def _pair(value: Any) -> tuple[int, int]:
    a, b = value
    return (int(a), int(b))


def layer_to_dict(layer: keras.layers.Layer) -> dict[str, Any]:
    """The spec fields of one Keras layer.

    Raises:
        TypeError: the layer is not one the layer language knows.
    """
    config = layer.get_config()
    name = layer.name
    if isinstance(layer, keras.layers.Dense):
        return {
            "type": "dense",
            "name": name,
            "units": int(config["units"]),
            "activation": config["activation"],
            "use_bias": bool(config["use_bias"]),
        }
    if isinstance(layer, keras.layers.Conv2DTranspose | keras.layers.Conv2D):
        kind = "conv2d_transpose" if isinstance(layer, keras.layers.Conv2DTranspose) else "conv2d"
        return {
            "type": kind,
            "name": name,
            "filters": int(config["filters"]),
            "kernel_size": _pair(config["kernel_size"]),
            "strides": _pair(config["strides"]),
            "padding": config["padding"],
            "activation": config["activation"],
            "use_bias": bool(config["use_bias"]),
        }
    if isinstance(layer, keras.layers.BatchNormalization):
        return {
            "type": "batch_norm",
            "name": name,
            "momentum": config["momentum"],
            "epsilon": config["epsilon"],
        }
    if isinstance(layer, keras.layers.MaxPooling2D | keras.layers.AveragePooling2D):
        kind = "max_pool" if isinstance(layer, keras.layers.MaxPooling2D) else "avg_pool"
        return {
            "type": kind,
            "name": name,
            "pool_size": _pair(config["pool_size"]),
            "strides": _pair(config["strides"]),
            "padding": config["padding"],
        }
    if isinstance(layer, keras.layers.Flatten):
        return {"type": "flatten", "name": name}
    if isinstance(layer, keras.layers.Dropout):
        return {"type": "dropout", "name": name, "rate": float(config["rate"])}
    if isinstance(layer, keras.layers.Activation):
        return {"type": "activation", "name": name, "activation": config["activation"]}
    raise TypeError(f"layer '{name}' ({type(layer).__name__}) is not in prunelab's layer language")


def model_to_spec(model: keras.Model) -> ModelSpec:
    """Read a sequential Keras model (e.g. after surgery) back as a spec."""
    layers = [
        layer_to_dict(layer) for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)
    ]
    input_shape = tuple(int(d) for d in model.input_shape[1:])
    return ModelSpec.model_validate({"input_shape": input_shape, "layers": layers})


def layer_weights(model: keras.Model) -> dict[str, list[np.ndarray]]:
    """Every layer's weights as NumPy arrays, by layer name (layers without weights omitted)."""
    return {layer.name: [np.array(w) for w in layer.get_weights()] for layer in model.layers if layer.weights}


def set_layer_weights(model: keras.Model, weights: dict[str, list[np.ndarray]]) -> None:
    """Load weights by layer name; every weighted layer of the model must be present."""
    for layer in model.layers:
        if layer.weights:
            layer.set_weights(weights[layer.name])
