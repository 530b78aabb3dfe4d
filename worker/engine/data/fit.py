"""Checking that a dataset fits a model, and reshaping it where that is exact."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from prunespec.layers import ModelSpec, Shape
from worker.engine.data.types import Dataset, DatasetError


def _fit_targets(y: np.ndarray, output: Shape, split: str) -> np.ndarray:
    shape = tuple(y.shape[1:])
    if shape == output:
        return y
    if math.prod(shape) == math.prod(output):
        return y.reshape((y.shape[0], *output))
    raise DatasetError(
        f"dataset: targets of shape {shape} ({split}) do not fit the model's output {output}; "
        f"make the last layer produce {shape} or change the dataset's target"
    )


def fit_to_model(data: Dataset, model: ModelSpec, loss: str) -> Dataset:
    """Check that a dataset fits a model before training and reshape it where that is exact.

    Inputs fit when they have ``model.input_shape`` or the same number of elements (a 28x28x1 image
    feeds a 784-wide dense input); they are then reshaped. Float targets fit the same way against the
    model's output shape. Labels need a 1-D output of width w and class ids in [0, w): with loss
    'crossentropy' they stay int64 ids, with any other loss they become one-hot float32 rows of width w.

    Args:
        data: the loaded dataset.
        model: the model spec the data will train.
        loss: the training loss ('mse', 'rmse' or 'crossentropy').

    Returns:
        A dataset with arrays shaped for the model (the same arrays where nothing changes);
        ``num_classes`` becomes the output width for label targets.

    Raises:
        DatasetError: naming the dataset's and the model's shapes, or the label range, that do not fit.
    """
    input_shape = tuple(model.input_shape)
    x_shape = tuple(data.x_train.shape[1:])
    if tuple(data.x_test.shape[1:]) != x_shape:
        raise DatasetError(
            f"dataset: training inputs have shape {x_shape} but test inputs {data.x_test.shape[1:]}"
        )
    if x_shape != input_shape and math.prod(x_shape) != math.prod(input_shape):
        raise DatasetError(
            f"dataset: inputs of shape {x_shape} ({math.prod(x_shape)} values) do not fit model.input_shape "
            f"{input_shape} ({math.prod(input_shape)} values); set model.input_shape to {x_shape} or to a "
            f"shape with {math.prod(x_shape)} elements"
        )
    x_train, x_test = data.x_train, data.x_test
    if x_shape != input_shape:
        x_train = x_train.reshape((x_train.shape[0], *input_shape))
        x_test = x_test.reshape((x_test.shape[0], *input_shape))
    output = tuple(model.output_shape)
    labels = data.num_classes is not None
    if loss == "crossentropy" and not labels:
        raise DatasetError(
            f"dataset: loss 'crossentropy' needs class labels but the dataset's targets have shape "
            f"{tuple(data.y_train.shape[1:])} ({data.description}); use target 'labels' or loss 'mse'"
        )
    if not labels:
        y_train = _fit_targets(data.y_train, output, "training")
        y_test = _fit_targets(data.y_test, output, "test")
        return dataclasses.replace(data, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    if len(output) != 1:
        raise DatasetError(
            f"dataset: {data.num_classes} classes need an output of shape ({data.num_classes},) "
            f"but the model's output is {output}"
        )
    width = output[0]
    for split, y in (("y_train", data.y_train), ("y_test", data.y_test)):
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise DatasetError(
                f"dataset: {split} must hold int class ids of shape (n,), got {y.shape} {y.dtype}"
            )
        if y.size and (int(y.min()) < 0 or int(y.max()) >= width):
            raise DatasetError(
                f"dataset: {split} holds class ids in [{int(y.min())}, {int(y.max())}] but the model's "
                f"output {output} allows ids in [0, {width}); "
                f"make the output layer {int(y.max()) + 1} units wide"
            )
    if loss == "crossentropy":
        y_train, y_test = data.y_train, data.y_test
    else:
        eye = np.eye(width, dtype=np.float32)
        y_train, y_test = eye[data.y_train], eye[data.y_test]
    return dataclasses.replace(
        data, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, num_classes=width
    )
