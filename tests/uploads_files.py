"""Files for the upload tests, made in the tests (nothing downloaded): hostile .keras zips built by hand,
small real Keras models, and .npz data sets."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np


def keras_layer(class_name: str, name: str, module: str = "keras.layers", **config: Any) -> dict[str, Any]:
    """One layer as Keras 3 serializes it."""
    return {
        "module": module,
        "class_name": class_name,
        "config": {"name": name, **config},
        "registered_name": None,
    }


def sequential_config(*layers: dict[str, Any]) -> dict[str, Any]:
    """A Sequential model's config.json around ``layers``."""
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": {
            "name": "sequential",
            "layers": [keras_layer("InputLayer", "input", batch_shape=[None, 4]), *layers],
        },
        "registered_name": None,
    }


def keras_zip(
    config: Any, *, entries: dict[str, bytes] | None = None, weights: bytes = b"\x00" * 64
) -> bytes:
    """The bytes of a .keras container holding ``config`` (JSON) and the given entries."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        archive.writestr("config.json", config if isinstance(config, bytes) else json.dumps(config))
        archive.writestr("model.weights.h5", weights)
        for name, content in (entries or {}).items():
            archive.writestr(name, content)
    return buffer.getvalue()


def npz_bytes(**arrays: Any) -> bytes:
    """An .npz of the arrays (object arrays allowed here: the server must refuse them)."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def tiny_npz(classes: int = 3, examples: int = 24, features: int = 4, seed: int = 0) -> bytes:
    """A small labelled data set of ``features``-wide inputs."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(examples, features)).astype(np.float32)
    y = rng.integers(0, classes, size=examples).astype(np.int64)
    cut = examples * 3 // 4
    return npz_bytes(x_train=x[:cut], y_train=y[:cut], x_test=x[cut:], y_test=y[cut:])


def small_dense_keras(path: Path, features: int = 4, classes: int = 3) -> Path:
    """A tiny real Keras model (dense, relu, dense) saved as .keras."""
    import keras

    model = keras.Sequential(
        [
            keras.Input((features,)),
            keras.layers.Dense(6, activation="relu", name="hidden"),
            keras.layers.Dense(classes, name="out"),
        ]
    )
    model.save(path)
    return path


def lenet5_keras(path: Path, x: np.ndarray, y: np.ndarray, epochs: int = 1) -> Path:
    """A small LeNet-5-like model (two conv/pool blocks, two dense layers) trained briefly and saved."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(4, 5, activation="relu", name="conv1"),
            keras.layers.MaxPooling2D(name="pool1"),
            keras.layers.Conv2D(6, 5, activation="relu", name="conv2"),
            keras.layers.MaxPooling2D(name="pool2"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(16, activation="relu", name="fc1"),
            keras.layers.Dense(10, name="logits"),
        ]
    )
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=0)
    model.save(path)
    return path
