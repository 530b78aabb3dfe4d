"""MNIST and Fashion-MNIST: finding their files in the data directories and loading them.

MNIST is read from Keras's ``mnist.npz``, or from the four IDX files in ``<dir>/mnist/`` or directly in
``<dir>``; Fashion-MNIST from the four IDX files in ``<dir>/fashion-mnist/`` only (the file names are
the same as MNIST's, so loose files count as MNIST). Where only the 10,000-image test pair exists it is
split deterministically, the first 80 % for training and the last 20 % for testing (8,000/2,000).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from prunespec.spec import ImageDataset
from worker.engine.data.idx import IMAGE_CLASSES, IMAGE_SIZE, _check_image_labels, _idx_pair
from worker.engine.data.npz import NPZ_KEYS, _read_npz
from worker.engine.data.types import ENV_DATA_DIR, Dataset, DatasetError, _dir_label, _take

KERAS_MNIST_NPZ = "mnist.npz"
TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
IDX_FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)
#: Fraction of a lone t10k set held out for testing (the last 2,000 of 10,000).
T10K_TEST_FRACTION = 0.2


@dataclass(frozen=True)
class _Found:
    kind: Literal["npz", "idx", "t10k"]
    path: Path  # the npz file, or the directory holding the IDX files

    def where(self) -> str:
        if self.kind == "npz":
            return str(self.path)
        if self.kind == "idx":
            return f"{self.path} (IDX files)"
        return f"{self.path} (t10k IDX pair only, split 80/20)"


def _locate_images(name: str, dirs: Sequence[Path]) -> _Found | None:
    """The first usable image files of a dataset, or None.

    Raises:
        DatasetError: a location holds an incomplete set of IDX files.
    """
    for directory in dirs:
        if name == "mnist":
            npz = directory / KERAS_MNIST_NPZ
            if npz.is_file():
                return _Found("npz", npz)
        # Loose IDX files are MNIST: Fashion-MNIST uses the same file names, so it must sit in its own
        # subfolder (as Keras caches it) lest digits silently stand in for clothes.
        folders = (directory / name, directory) if name == "mnist" else (directory / name,)
        for folder in folders:
            present = {f for f in IDX_FILES if (folder / f).is_file()}
            if not present:
                continue
            if len(present) == len(IDX_FILES):
                return _Found("idx", folder)
            if present == {TEST_IMAGES, TEST_LABELS}:
                return _Found("t10k", folder)
            missing = [f for f in IDX_FILES if f not in present]
            raise DatasetError(
                f"{name}: {folder} holds an incomplete set of IDX files: found {sorted(present)}, "
                f"missing {missing}; add the missing files, or remove the partial set"
            )
    return None


def _missing_images_message(name: str, dirs: Sequence[Path]) -> str:
    searched = ", ".join(str(d) for d in dirs) or "(no directories)"
    idx = ", ".join(IDX_FILES)
    target = dirs[0] if dirs else Path.home() / ".keras" / "datasets"
    label = _dir_label(target)
    if name == "mnist":
        what = (
            f"put Keras's {KERAS_MNIST_NPZ} (keys x_train, y_train, x_test, y_test) or the four IDX files "
            f"{idx} into {label}, or the IDX files into {target / name}"
        )
    else:
        what = (
            f"put the four IDX files {idx} into the subfolder {target / name} of {label} (as Keras caches "
            "them; loose IDX files in a data directory are read as MNIST)"
        )
    env_hint = (
        ""
        if os.environ.get(ENV_DATA_DIR, "").strip()
        else f", or set ${ENV_DATA_DIR} to a directory holding them"
    )
    return (
        f"{name}: no data files found; searched {searched}. To fix: {what}{env_hint}. "
        f"The two t10k files alone also work (split {1 - T10K_TEST_FRACTION:.0%}/{T10K_TEST_FRACTION:.0%}). "
        "prunelab never downloads data."
    )


def _load_keras_npz(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    arrays = _read_npz(path)
    out: list[np.ndarray] = []
    for key in NPZ_KEYS:
        array = arrays[key]
        if key.startswith("x"):
            if array.ndim == 4 and array.shape[-1] == 1:
                array = array[..., 0]
            if array.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
                raise DatasetError(
                    f"{path}: {key} has shape {array.shape}, expected (n, {IMAGE_SIZE}, {IMAGE_SIZE}) images"
                )
        else:
            array = array.reshape(-1) if array.ndim == 2 and array.shape[1] == 1 else array
            if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
                raise DatasetError(
                    f"{path}: {key} has shape {array.shape} and dtype {array.dtype}, "
                    "expected integer labels of shape (n,)"
                )
            _check_image_labels(array, f"{path} ({key})")
        out.append(array)
    x_train, y_train, x_test, y_test = out
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if x.shape[0] != y.shape[0]:
            raise DatasetError(f"{path}: x_{split} has {x.shape[0]} examples but y_{split} has {y.shape[0]}")
    return x_train, y_train, x_test, y_test


def _scale_images(images: np.ndarray) -> np.ndarray:
    if np.issubdtype(images.dtype, np.integer):
        scaled = images.astype(np.float32) / np.float32(255.0)
    else:
        scaled = images.astype(np.float32)  # already floats (a re-saved npz): keep the values
    return scaled.reshape(images.shape[0], IMAGE_SIZE, IMAGE_SIZE, 1)


def _image_dataset(spec: ImageDataset, dirs: Sequence[Path]) -> Dataset:
    found = _locate_images(spec.name, dirs)
    if found is None:
        raise DatasetError(_missing_images_message(spec.name, dirs))
    if found.kind == "npz":
        x_train, y_train, x_test, y_test = _load_keras_npz(found.path)
        split = f"{x_train.shape[0]}/{x_test.shape[0]}"
    elif found.kind == "idx":
        x_train, y_train = _idx_pair(found.path / TRAIN_IMAGES, found.path / TRAIN_LABELS)
        x_test, y_test = _idx_pair(found.path / TEST_IMAGES, found.path / TEST_LABELS)
        split = f"{x_train.shape[0]}/{x_test.shape[0]}"
    else:
        images, labels = _idx_pair(found.path / TEST_IMAGES, found.path / TEST_LABELS)
        total = images.shape[0]
        n_test = int(round(total * T10K_TEST_FRACTION))
        n_train = total - n_test
        if n_train < 1 or n_test < 1:
            raise DatasetError(
                f"{found.path / TEST_IMAGES}: {total} images are too few to split into training and test sets"
            )
        x_train, y_train, x_test, y_test = (
            images[:n_train],
            labels[:n_train],
            images[n_train:],
            labels[n_train:],
        )
        split = f"t10k split {n_train}/{n_test}"
    x_train = _take(x_train, spec.train_samples, "train_samples", f"the {spec.name} training set ({split})")
    y_train = y_train[: x_train.shape[0]]
    x_test = _take(x_test, spec.test_samples, "test_samples", f"the {spec.name} test set ({split})")
    y_test = y_test[: x_test.shape[0]]
    if spec.train_samples is not None or spec.test_samples is not None:
        split += f", using {x_train.shape[0]}/{x_test.shape[0]}"
    xf_train, xf_test = _scale_images(x_train), _scale_images(x_test)
    source = found.path
    if spec.target == "input":
        return Dataset(
            xf_train, xf_train, xf_test, xf_test, None, f"{spec.name} ({split}, target input) from {source}"
        )
    return Dataset(
        xf_train,
        y_train.astype(np.int64),
        xf_test,
        y_test.astype(np.int64),
        IMAGE_CLASSES,
        f"{spec.name} ({split}) from {source}",
    )
