"""TFLite conversion of a cycle's Keras model, and its fidelity under the LiteRT interpreter.

Conversion goes the way TensorFlow recommends for Keras 3: the model's inference call (``training=False``)
is exported as a SavedModel through ``keras.export.ExportArchive`` with a free batch axis, then
``tf.lite.TFLiteConverter.from_saved_model`` converts it. Only TFLite builtin operators are allowed (no
TensorFlow "flex" ops: the LiteRT interpreter cannot run them), so a model LiteRT cannot run fails at
conversion with :class:`ConversionError` rather than later at load time.

Formats (every one keeps float32 model inputs and outputs):

- ``float32``: weights and arithmetic in float32.
- ``float16``: weights stored in float16 and dequantised to float32 at load.
- ``int8_dynamic``: dynamic-range quantisation; kernels of at least 1,024 elements stored in int8 with
  a scale per output channel, activations quantised on the fly; everything else stays float32.
- ``int8_full``: full-integer quantisation (int8 weights and activations, int32 biases) calibrated on
  representative inputs drawn from the training set; the converter refuses any operator without an
  int8 kernel.

Models run in ``ai_edge_litert.interpreter.Interpreter`` (the successor of the deprecated
``tf.lite.Interpreter``) with its default op resolver; :mod:`worker.engine.latency` times them.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import keras
import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from worker.engine.bits import FORMATS
from worker.engine.training import Objective

#: Representative inputs the int8_full calibration runs by default.
DEFAULT_CALIBRATION_SAMPLES = 200
#: Examples per interpreter call when evaluating a model on a data set.
DEFAULT_EVAL_BATCH = 256


class ConversionError(RuntimeError):
    """The TFLite converter refused a model.

    Attributes:
        fmt: the format asked for.
        reason: the converter's error lines, shortened to what names the failing operator.
        details: the converter's full message.
    """

    def __init__(self, model_name: str, fmt: str, details: str):
        self.fmt = fmt
        self.details = details
        self.reason = _converter_reason(details)
        super().__init__(f"cannot convert model '{model_name}' to {fmt} TFLite: {self.reason}")


def _converter_reason(details: str) -> str:
    """The converter's ``error:`` lines without their MLIR locations, or its first line."""
    reasons: list[str] = []
    for line in details.splitlines():
        if "error:" not in line:
            continue
        text = line.split("error:", 1)[1]
        text = re.sub(r"^\s*loc\(.*\)\):\s*", "", text).strip()
        if text and text not in reasons:
            reasons.append(text)
    if reasons:
        return "; ".join(reasons)
    first = details.strip().splitlines()
    return first[0] if first else "no message"


# --------------------------------------------------------------------------------------------- convert


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"unknown TFLite format '{fmt}'; formats: {list(FORMATS)}")


def _representative_rows(representative: np.ndarray, samples: int, seed: int) -> Iterator[list[np.ndarray]]:
    """Single-example batches drawn without replacement (sorted, seeded) from ``representative``."""
    rows = np.arange(len(representative))
    if len(rows) > samples:
        rows = np.sort(np.random.default_rng(seed).choice(len(rows), size=samples, replace=False))
    for row in rows:
        yield [np.asarray(representative[row : row + 1], dtype=np.float32)]


def _export_saved_model(model: keras.Model, directory: str) -> None:
    """Write the model's inference call as a SavedModel endpoint ``serve`` with a free batch axis."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    signature = [tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name="input")]
    archive.add_endpoint("serve", lambda x: model(x, training=False), input_signature=signature)
    archive.write_out(directory, verbose=False)


def convert(
    model: keras.Model,
    fmt: str = "float32",
    representative: np.ndarray | None = None,
    *,
    sparse_weights: bool = False,
    calibration_samples: int = DEFAULT_CALIBRATION_SAMPLES,
    seed: int = 0,
) -> bytes:
    """Convert a Keras model to a TFLite flatbuffer.

    Args:
        model: a single-input, single-output Keras model (its weights are read, never changed).
        fmt: one of :data:`FORMATS`. Default "float32".
        representative: training inputs (examples along the first axis) to calibrate ``int8_full``
            activations; ignored by the other formats. Default None.
        sparse_weights: also store weights with many zeros in TFLite's sparse format
            (``tf.lite.Optimize.EXPERIMENTAL_SPARSITY``): a smaller file, but LiteRT densifies them
            when it loads the model (see ``sparse_bench``). Default False.
        calibration_samples: at most this many representative examples are used, drawn without
            replacement with ``seed``. Default 200.
        seed: seeds that draw. Default 0.

    Returns:
        The ``.tflite`` flatbuffer; its input and output are float32 with a free batch axis.

    Raises:
        ValueError: ``fmt`` is unknown, or ``int8_full`` lacks representative data.
        ConversionError: the converter refused the model (e.g. an operator with no TFLite builtin or,
            for ``int8_full``, no int8 kernel); the message carries the converter's reason.
    """
    _check_format(fmt)
    if fmt == "int8_full" and (representative is None or len(representative) == 0):
        raise ValueError("int8_full needs representative inputs from the training set to calibrate")
    with tempfile.TemporaryDirectory(prefix="prunelab-tflite-") as directory:
        _export_saved_model(model, directory)
        converter = tf.lite.TFLiteConverter.from_saved_model(directory)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        optimizations: list[Any] = []
        if fmt != "float32":
            optimizations.append(tf.lite.Optimize.DEFAULT)
        if sparse_weights:
            optimizations.append(tf.lite.Optimize.EXPERIMENTAL_SPARSITY)
        converter.optimizations = optimizations
        if fmt == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if fmt == "int8_full":
            assert representative is not None
            data = representative
            converter.representative_dataset = lambda: _representative_rows(data, calibration_samples, seed)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        try:
            flatbuffer = converter.convert()
        except Exception as exc:  # the converter raises ConverterError, ValueError or RuntimeError
            raise ConversionError(model.name, fmt, str(exc)) from exc
    return bytes(flatbuffer)


# --------------------------------------------------------------------------------------------- run


def _interpreter(model_bytes: bytes, threads: int) -> Interpreter:
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    return Interpreter(model_content=model_bytes, num_threads=threads)


def _float_io(interpreter: Interpreter) -> tuple[dict[str, Any], dict[str, Any]]:
    """The single input and output details.

    Raises:
        ValueError: the model has several inputs or outputs, or non-float32 ones.
    """
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(f"expected one input and one output, got {len(inputs)} and {len(outputs)}")
    for kind, detail in (("input", inputs[0]), ("output", outputs[0])):
        if detail["dtype"] != np.float32:
            raise ValueError(f"expected a float32 {kind}, got {np.dtype(detail['dtype']).name}")
    return inputs[0], outputs[0]


def _check_example_shape(detail: Mapping[str, Any], x: np.ndarray) -> None:
    """Raise ValueError unless ``x``'s examples have the model's input shape."""
    expected = tuple(int(d) for d in detail["shape_signature"][1:])
    if tuple(x.shape[1:]) != expected:
        raise ValueError(f"the model takes examples of shape {expected}, got {tuple(x.shape[1:])}")


def predict_tflite(
    model_bytes: bytes, x: np.ndarray, batch_size: int = DEFAULT_EVAL_BATCH, threads: int = 1
) -> np.ndarray:
    """Run a TFLite model over a whole array.

    The input is resized once to ``batch_size`` examples (``convert`` exports a free batch axis); the
    last, shorter batch is zero-padded and its padding dropped.

    Args:
        model_bytes: a flatbuffer with one float32 input and output.
        x: float32 inputs, examples along the first axis.
        batch_size: examples per interpreter call (fewer when ``x`` is shorter). Default 256.
        threads: interpreter threads. Default 1.

    Returns:
        float32 outputs, one row per example.

    Raises:
        ValueError: the model has other than one float32 input and output, ``x``'s examples do not
            have its input shape, or ``threads`` < 1.
    """
    interpreter = _interpreter(model_bytes, threads)
    detail, output = _float_io(interpreter)
    _check_example_shape(detail, x)
    batch = max(1, min(batch_size, len(x)))
    interpreter.resize_tensor_input(detail["index"], [batch, *x.shape[1:]])
    interpreter.allocate_tensors()
    chunks: list[np.ndarray] = []
    for start in range(0, len(x), batch):
        chunk = np.asarray(x[start : start + batch], dtype=np.float32)
        rows = len(chunk)
        if rows < batch:
            chunk = np.concatenate([chunk, np.zeros((batch - rows, *chunk.shape[1:]), np.float32)])
        interpreter.set_tensor(detail["index"], chunk)
        interpreter.invoke()
        chunks.append(interpreter.get_tensor(output["index"])[:rows].copy())
    if not chunks:
        return np.zeros((0, *output["shape"][1:]), dtype=np.float32)
    return np.concatenate(chunks)


# --------------------------------------------------------------------------------------------- evaluate


class Evaluation(NamedTuple):
    """Loss and metric of a model's outputs on a data set (unpacks as ``loss, metric``)."""

    loss: float
    metric: float


def score_outputs(y_true: np.ndarray, y_pred: np.ndarray, goal: Objective) -> Evaluation:
    """The run's loss and metric of predictions over a whole data set.

    Both are computed in one pass over all examples (not averaged over batches as ``model.evaluate``
    does), and without the model's regularisation penalties, so Keras and TFLite outputs compare
    exactly.

    Args:
        y_true: targets in the form the loss expects (see ``training.targets``).
        y_pred: the model's outputs.
        goal: the run's loss and metric.

    Returns:
        The loss and the metric as floats.
    """
    predictions = tf.convert_to_tensor(y_pred, dtype=tf.float32)
    loss = float(goal.loss(y_true, predictions))
    metric = goal.metric_factory()
    metric.update_state(y_true, predictions)
    return Evaluation(loss=loss, metric=float(metric.result()))


def evaluate_tflite(
    model_bytes: bytes,
    x: np.ndarray,
    y: np.ndarray,
    goal: Objective,
    batch_size: int = DEFAULT_EVAL_BATCH,
    threads: int = 1,
) -> Evaluation:
    """Loss and metric of a TFLite model on a data set, as :func:`score_outputs` computes them.

    Args:
        model_bytes: a flatbuffer with one float32 input and output.
        x: inputs.
        y: targets in the form the loss expects.
        goal: the run's loss and metric.
        batch_size: examples per interpreter call. Default 256.
        threads: interpreter threads. Default 1.

    Returns:
        ``(loss, metric)``.

    Raises:
        ValueError: the model has other than one float32 input and output.
    """
    return score_outputs(y, predict_tflite(model_bytes, x, batch_size, threads), goal)


def evaluate_keras(
    model: keras.Model, x: np.ndarray, y: np.ndarray, goal: Objective, batch_size: int = DEFAULT_EVAL_BATCH
) -> Evaluation:
    """Loss and metric of the Keras model computed exactly as :func:`evaluate_tflite` does.

    Args:
        model: the trained Keras model.
        x: inputs.
        y: targets in the form the loss expects.
        goal: the run's loss and metric.
        batch_size: examples per prediction batch. Default 256.

    Returns:
        ``(loss, metric)``.
    """
    return score_outputs(y, model.predict(x, batch_size=batch_size, verbose=0), goal)
