"""Parsing of gzip-compressed IDX files (the MNIST and Fashion-MNIST distribution format)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from worker.engine.data.types import DatasetError

IMAGE_SIZE = 28
IMAGE_CLASSES = 10
IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049


def _read_gzip(path: Path) -> bytes:
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DatasetError(
            f"{path}: not a readable gzip file ({exc}); replace it with an intact copy"
        ) from None


def read_idx_images(path: Path) -> np.ndarray:
    """Read a gzip-compressed IDX image file (magic 2051) of 28x28 images.

    Args:
        path: the ``*-images-idx3-ubyte.gz`` file.

    Returns:
        uint8 array of shape (n, 28, 28).

    Raises:
        DatasetError: the file is not gzip, has the wrong magic number or size, or is truncated.
    """
    raw = _read_gzip(path)
    if len(raw) < 16:
        raise DatasetError(f"{path}: too short for an IDX image header (16 bytes); the file is truncated")
    magic, count, rows, cols = struct.unpack(">iiii", raw[:16])
    if magic != IMAGES_MAGIC:
        hint = " (that is a label file)" if magic == LABELS_MAGIC else ""
        raise DatasetError(
            f"{path}: magic number {magic}{hint}, expected {IMAGES_MAGIC} for an IDX image file; "
            "check that the file is an images-idx3-ubyte.gz file and not swapped or corrupt"
        )
    if (rows, cols) != (IMAGE_SIZE, IMAGE_SIZE):
        raise DatasetError(f"{path}: images are {rows}x{cols}, expected {IMAGE_SIZE}x{IMAGE_SIZE}")
    expected = 16 + count * rows * cols
    if len(raw) != expected:
        raise DatasetError(
            f"{path}: header promises {count} images ({expected} bytes) but the file holds {len(raw)} bytes; "
            "the file is truncated or corrupt"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(count, rows, cols)


def read_idx_labels(path: Path) -> np.ndarray:
    """Read a gzip-compressed IDX label file (magic 2049).

    Args:
        path: the ``*-labels-idx1-ubyte.gz`` file.

    Returns:
        uint8 array of shape (n,).

    Raises:
        DatasetError: the file is not gzip, has the wrong magic number or size, or is truncated.
    """
    raw = _read_gzip(path)
    if len(raw) < 8:
        raise DatasetError(f"{path}: too short for an IDX label header (8 bytes); the file is truncated")
    magic, count = struct.unpack(">ii", raw[:8])
    if magic != LABELS_MAGIC:
        hint = " (that is an image file)" if magic == IMAGES_MAGIC else ""
        raise DatasetError(
            f"{path}: magic number {magic}{hint}, expected {LABELS_MAGIC} for an IDX label file; "
            "check that the file is a labels-idx1-ubyte.gz file and not swapped or corrupt"
        )
    if len(raw) != 8 + count:
        raise DatasetError(
            f"{path}: header promises {count} labels but the file holds {len(raw) - 8}; "
            "the file is truncated or corrupt"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=8)


def _idx_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images, labels = read_idx_images(images_path), read_idx_labels(labels_path)
    if images.shape[0] != labels.shape[0]:
        raise DatasetError(
            f"{images_path} holds {images.shape[0]} images but {labels_path} holds {labels.shape[0]} labels; "
            "use an images file and a labels file of the same split"
        )
    _check_image_labels(labels, labels_path)
    return images, labels


def _check_image_labels(labels: np.ndarray, source: object) -> None:
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= IMAGE_CLASSES):
        raise DatasetError(
            f"{source}: labels range over [{int(labels.min())}, {int(labels.max())}], "
            f"expected class ids 0-{IMAGE_CLASSES - 1}"
        )
