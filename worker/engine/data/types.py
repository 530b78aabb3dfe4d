"""The dataset container, its error, and the sample-count cut shared by the loaders.

The data directories are defined once, in ``prunespec.datapaths`` (re-exported here).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prunespec.datapaths import ENV_DATA_DIR, default_data_dirs

__all__ = ["ENV_DATA_DIR", "Dataset", "DatasetError", "default_data_dirs"]


class DatasetError(ValueError):
    """A dataset cannot be loaded or does not fit the model; the message says how to fix it."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """Training and test arrays, examples along the first axis.

    Attributes:
        x_train, x_test: float32 inputs.
        y_train, y_test: float32 targets, or int64 class labels of shape (n,) for classification.
        num_classes: number of classes for label targets, None for regression or reconstruction.
        description: where the data came from, e.g. "mnist (t10k split 8000/2000) from /data".
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int | None
    description: str


# --------------------------------------------------------------------------------------------- dirs


def _dirs(data_dirs: Sequence[Path] | None) -> list[Path]:
    if data_dirs is None:
        return default_data_dirs()
    return [Path(d).expanduser() for d in data_dirs]


def _dir_label(directory: Path) -> str:
    """``$PRUNELAB_DATA_DIR (/x/y)`` when the directory is the one the variable names, else the path."""
    env = os.environ.get(ENV_DATA_DIR, "").strip()
    if env and Path(env).expanduser() == directory:
        return f"${ENV_DATA_DIR} ({directory})"
    return str(directory)


# --------------------------------------------------------------------------------------------- samples


def _take(array: np.ndarray, count: int | None, field: str, what: str) -> np.ndarray:
    if count is None:
        return array
    if count > array.shape[0]:
        raise DatasetError(
            f"dataset.{field} is {count} but {what} has only {array.shape[0]} examples; "
            f"set dataset.{field} to at most {array.shape[0]} or leave it unset"
        )
    return array[:count]
