"""Keras models from specs (any graph, through the functional API), and layer weights by name.

Reading a Keras model back as a spec is ``worker.engine.from_keras`` (re-exported here).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import keras
import numpy as np
from keras import ops

from prunespec.criteria import bn_after
from prunespec.layers import (
    MODEL_INPUT,
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
    UpSampling2DLayer,
    ZeroPadding2DLayer,
)
from prunespec.spec import TrainingSpec
from worker.engine.from_keras import UnsupportedLayerError, layer_to_dict, model_to_spec, read_model

__all__ = [
    "INPUT_AXIS",
    "UNIT_AXIS",
    "KernelPenalty",
    "UnsupportedLayerError",
    "build_layer",
    "build_model",
    "keras_activation",
    "layer_to_dict",
    "layer_weights",
    "model_to_spec",
    "read_model",
    "set_layer_weights",
]

#: Axis of a kernel that indexes the layer's output units, by layer type (a separable convolution's
#: pointwise kernel; a depthwise kernel's channels).
UNIT_AXIS = {"dense": 1, "conv2d": 3, "conv2d_transpose": 2, "separable_conv2d": 3, "depthwise_conv2d": 2}
#: Axis of a kernel that indexes the layer's input units, by layer type (for a separable convolution
#: the pointwise kernel; its depthwise kernel's channels are axis 2 too).
INPUT_AXIS = {"dense": 0, "conv2d": 2, "conv2d_transpose": 3, "separable_conv2d": 2, "depthwise_conv2d": 2}
#: Keras's name for a spec activation where the two differ.
KERAS_ACTIVATION = {"swish": "silu", "hard_swish": "hard_silu"}


def keras_activation(name: str) -> str:
    """The Keras activation name for a spec activation (``hard_swish`` is Keras's ``hard_silu``)."""
    return KERAS_ACTIVATION.get(name, name)


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
    """One Keras layer for one spec layer, named as in the spec.

    Args:
        layer: the spec layer.
        training: adds its kernel penalties (and, when ``prunable``, group lasso and activity
            penalties). Default None (no penalties).
        prunable: whether the layer's units may be removed. Default False.

    Raises:
        TypeError: the layer is not one the layer language knows.
    """
    name = layer.name
    activity = _activity_penalty(training, prunable)
    if isinstance(layer, DenseLayer):
        return keras.layers.Dense(
            layer.units,
            activation=keras_activation(layer.activation),
            use_bias=layer.use_bias,
            kernel_regularizer=_kernel_penalty("dense", training, prunable),
            activity_regularizer=activity,
            name=name,
        )
    if isinstance(layer, Conv2DLayer | Conv2DTransposeLayer | SeparableConv2DLayer | DepthwiseConv2DLayer):
        window = {
            "strides": layer.strides,
            "padding": layer.padding,
            "activation": keras_activation(layer.activation),
            "use_bias": layer.use_bias,
            "name": name,
        }
        if isinstance(layer, DepthwiseConv2DLayer):
            penalty = _kernel_penalty(layer.type, training, False)
            return keras.layers.DepthwiseConv2D(layer.kernel_size, depthwise_regularizer=penalty, **window)
        window["activity_regularizer"] = activity
        if isinstance(layer, SeparableConv2DLayer):
            return keras.layers.SeparableConv2D(
                layer.filters,
                layer.kernel_size,
                depthwise_regularizer=_kernel_penalty("depthwise_conv2d", training, False),
                pointwise_regularizer=_kernel_penalty(layer.type, training, prunable),
                **window,
            )
        cls = keras.layers.Conv2D if isinstance(layer, Conv2DLayer) else keras.layers.Conv2DTranspose
        penalty = _kernel_penalty(layer.type, training, prunable)
        return cls(layer.filters, layer.kernel_size, kernel_regularizer=penalty, **window)
    if isinstance(layer, BatchNormLayer):
        return keras.layers.BatchNormalization(
            momentum=layer.momentum,
            epsilon=layer.epsilon,
            gamma_regularizer=_gamma_penalty(training, prunable),
            name=name,
        )
    return _build_plain_layer(layer)


def _build_plain_layer(layer: Layer) -> keras.layers.Layer:
    """A Keras layer without kernels for one spec layer."""
    name = layer.name
    if isinstance(layer, MaxPoolLayer | AvgPoolLayer):
        pool = keras.layers.MaxPooling2D if isinstance(layer, MaxPoolLayer) else keras.layers.AveragePooling2D
        return pool(layer.pool_size, strides=layer.effective_strides, padding=layer.padding, name=name)
    if isinstance(layer, GlobalAvgPoolLayer):
        return keras.layers.GlobalAveragePooling2D(keepdims=layer.keepdims, name=name)
    if isinstance(layer, GlobalMaxPoolLayer):
        return keras.layers.GlobalMaxPooling2D(keepdims=layer.keepdims, name=name)
    if isinstance(layer, ZeroPadding2DLayer):
        return keras.layers.ZeroPadding2D(layer.padding, name=name)
    if isinstance(layer, UpSampling2DLayer):
        return keras.layers.UpSampling2D(layer.size, name=name)
    if isinstance(layer, ReshapeLayer):
        return keras.layers.Reshape(layer.target_shape, name=name)
    if isinstance(layer, FlattenLayer):
        return keras.layers.Flatten(name=name)
    if isinstance(layer, DropoutLayer):
        return keras.layers.Dropout(layer.rate, name=name)
    if isinstance(layer, ActivationLayer):
        return keras.layers.Activation(keras_activation(layer.activation), name=name)
    if isinstance(layer, AddLayer):
        return keras.layers.Add(name=name)
    if isinstance(layer, MultiplyLayer):
        return keras.layers.Multiply(name=name)
    if isinstance(layer, ConcatenateLayer):
        return keras.layers.Concatenate(axis=layer.axis, name=name)
    raise TypeError(f"no Keras layer for {type(layer).__name__}")


def build_model(
    spec: ModelSpec, training: TrainingSpec | None = None, prunable: Collection[str] | None = None
) -> keras.Model:
    """A functional Keras model whose layers carry the spec's names and follow its graph.

    Args:
        spec: the architecture.
        training: adds its kernel and activity penalties when given. Default None (no penalties).
        prunable: layer names that get the group-lasso and activity penalties. Default: every prunable
            layer of the spec.

    Returns:
        An uncompiled ``keras.Model`` named ``prunelab``; its input layer is named ``input``.
    """
    chosen = set(spec.prunable_names() if prunable is None else prunable)
    chosen |= slimmed_batch_norms(spec, chosen)  # a batch norm marked prunable gets training.bn_l1
    inputs = keras.Input(shape=tuple(spec.input_shape), name=MODEL_INPUT)
    tensors: dict[str, Any] = {MODEL_INPUT: inputs}
    for layer in spec.layers:
        sources = [tensors[source] for source in layer.inputs or ()]
        keras_layer = build_layer(layer, training, prunable=layer.name in chosen)
        tensors[layer.key] = keras_layer(sources[0] if len(sources) == 1 else sources)
    return keras.Model(inputs, tensors[spec.layers[-1].key], name="prunelab")


def layer_weights(model: keras.Model) -> dict[str, list[np.ndarray]]:
    """Every layer's weights as NumPy arrays, by layer name (layers without weights omitted)."""
    return {layer.name: [np.array(w) for w in layer.get_weights()] for layer in model.layers if layer.weights}


def set_layer_weights(model: keras.Model, weights: dict[str, list[np.ndarray]]) -> None:
    """Load weights by layer name; every weighted layer of the model must be present."""
    for layer in model.layers:
        if layer.weights:
            layer.set_weights(weights[layer.name])
