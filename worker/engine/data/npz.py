"""User datasets from .npz files (x_train, y_train, x_test, y_test), loaded without pickle."""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from prunespec.datapaths import PathOutsideDataDirs, confine
from prunespec.spec import NpzDataset
from worker.engine.data.types import Dataset, DatasetError, _take

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def _read_npz(path: Path, label: str | None = None) -> dict[str, np.ndarray]:
    """The four arrays of an .npz file, loaded without pickle.

    Args:
        path: the file.
        label: how messages name it. Default None: ``path`` itself.
    """
    name = str(path) if label is None else label

    def detail(exc: BaseException) -> str:
        return str(exc).replace(str(path), name)

    try:
        loaded = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DatasetError(f"{name}: no such file") from None
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DatasetError(
            f"{name}: not a readable .npz file ({detail(exc)}); save it with numpy.savez(path, x_train=..., "
            "y_train=..., x_test=..., y_test=...)"
        ) from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise DatasetError(
            f"{name}: holds a single array, not an .npz archive; save the four arrays with "
            "numpy.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)"
        )
    with loaded:
        missing = [key for key in NPZ_KEYS if key not in loaded.files]
        if missing:
            raise DatasetError(
                f"{name}: missing keys {missing} (it has {sorted(loaded.files)}); an .npz dataset needs "
                f"{list(NPZ_KEYS)}"
            )
        arrays: dict[str, np.ndarray] = {}
        for key in NPZ_KEYS:
            try:
                arrays[key] = loaded[key]
            except ValueError as exc:
                raise DatasetError(
                    f"{name}: array '{key}' cannot be loaded without pickle ({detail(exc)}); object arrays "
                    "are refused for safety: save plain numeric arrays "
                    "(e.g. numpy.asarray(values, dtype=numpy.float32))"
                ) from None
            except (OSError, zipfile.BadZipFile, EOFError) as exc:
                raise DatasetError(f"{name}: array '{key}' is corrupt ({detail(exc)})") from None
    return arrays


def _local_npz_path(raw: str, dirs: Sequence[Path]) -> Path:
    """A local run's path: absolute or ``~`` as written, relative against the first data directory."""
    path = Path(raw).expanduser()
    if path.is_absolute():
        return path
    base = dirs[0] if dirs else Path.cwd()
    return base / path


def _locate_npz(raw: str, dirs: Sequence[Path], local_paths: bool) -> tuple[Path, str]:
    """The file a spec's ``dataset.path`` names, and how messages name it.

    Raises:
        DatasetError: the file does not exist, or (``local_paths`` False) the path is not confined to the
            data directories (the message is the same whether the file exists or not).
    """
    if local_paths:
        path = _local_npz_path(raw, dirs)
        if not path.is_file():
            hint = (
                ""
                if Path(raw).expanduser().is_absolute()
                else f" (relative paths resolve against {dirs[0] if dirs else Path.cwd()})"
            )
            raise DatasetError(
                f"dataset.path: {path} does not exist{hint}; give the path of an existing .npz file"
            )
        return path, str(path)
    try:
        path = confine(raw, dirs)
    except PathOutsideDataDirs as exc:
        raise DatasetError(f"dataset.path: {exc}") from None
    if not path.is_file():
        raise DatasetError(
            f"dataset.path: {raw} does not exist in the server's data directory; give the path of an "
            "existing .npz file, relative to it"
        )
    return path, raw


def _numeric(array: np.ndarray, key: str, path: str) -> np.ndarray:
    kind = array.dtype.kind
    if kind not in "biuf":
        raise DatasetError(
            f"{path}: {key} has dtype {array.dtype}; save it as a numeric array (integers or floats)"
        )
    if array.ndim == 0 or array.shape[0] == 0:
        raise DatasetError(f"{path}: {key} has shape {array.shape}; it needs at least one example")
    out = array.astype(np.float32)
    if not np.all(np.isfinite(out)):
        raise DatasetError(f"{path}: {key} holds NaN or infinite values (after conversion to float32)")
    return out


def _labels(array: np.ndarray, key: str, path: str) -> np.ndarray:
    if array.ndim == 2 and array.shape[1] == 1:
        array = array.reshape(-1)
    if array.ndim != 1:
        raise DatasetError(
            f"{path}: {key} has shape {array.shape} but target 'labels' needs class ids of shape (n,); "
            "use target 'values' for one-hot or multi-output targets"
        )
    if array.dtype.kind in "iu":
        labels = array.astype(np.int64)
    elif array.dtype.kind == "f" and np.all(np.isfinite(array)) and np.all(array == np.round(array)):
        labels = array.astype(np.int64)
    else:
        raise DatasetError(
            f"{path}: {key} has dtype {array.dtype} with non-integer values but target 'labels' needs "
            "integer class ids; use target 'values' for regression targets"
        )
    if labels.size and int(labels.min()) < 0:
        raise DatasetError(
            f"{path}: {key} holds negative labels (minimum {int(labels.min())}); use ids 0, 1, ..."
        )
    return labels


def _npz_dataset(spec: NpzDataset, dirs: Sequence[Path], *, local_paths: bool = False) -> Dataset:
    """A user's .npz dataset.

    Args:
        spec: the dataset spec.
        dirs: the data directories.
        local_paths: a local run's own file (absolute paths and ``~`` allowed, messages name the full
            path). Default False: the path is confined to ``dirs`` and messages name it as written.

    Raises:
        DatasetError: the file is missing, outside the data directories, unreadable or malformed.
    """
    if spec.path is None:  # an uploaded data set (``dataset.id``): worker.uploaded reads it from the store
        raise DatasetError(f"uploaded data set {spec.id} is read from the upload store, not a path")
    file, path = _locate_npz(spec.path, dirs, local_paths)
    arrays = _read_npz(file, path)
    for split in ("train", "test"):
        nx, ny = arrays[f"x_{split}"].shape[:1], arrays[f"y_{split}"].shape[:1]
        if nx != ny:
            raise DatasetError(
                f"{path}: x_{split} has {nx[0] if nx else 'no'} examples but y_{split} has "
                f"{ny[0] if ny else 'no'}; "
                "inputs and targets need one example each along the first axis"
            )
    x_train = _numeric(
        _take(arrays["x_train"], spec.train_samples, "train_samples", f"{path} x_train"), "x_train", path
    )
    x_test = _numeric(
        _take(arrays["x_test"], spec.test_samples, "test_samples", f"{path} x_test"), "x_test", path
    )
    x_train = x_train.reshape(-1, 1) if x_train.ndim == 1 else x_train
    x_test = x_test.reshape(-1, 1) if x_test.ndim == 1 else x_test
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DatasetError(
            f"{path}: x_train examples have shape {x_train.shape[1:]} but x_test {x_test.shape[1:]}"
        )
    y_train_raw = arrays["y_train"][: x_train.shape[0]]
    y_test_raw = arrays["y_test"][: x_test.shape[0]]
    split = f"{x_train.shape[0]}/{x_test.shape[0]}"
    if spec.target == "input":
        return Dataset(x_train, x_train, x_test, x_test, None, f"npz ({split}, target input) from {path}")
    if spec.target == "labels":
        y_train, y_test = _labels(y_train_raw, "y_train", path), _labels(y_test_raw, "y_test", path)
        num_classes = int(max(y_train.max(), y_test.max())) + 1
        return Dataset(
            x_train, y_train, x_test, y_test, num_classes, f"npz ({split}, {num_classes} classes) from {path}"
        )
    y_train, y_test = _numeric(y_train_raw, "y_train", path), _numeric(y_test_raw, "y_test", path)
    y_train = y_train.reshape(-1, 1) if y_train.ndim == 1 else y_train
    y_test = y_test.reshape(-1, 1) if y_test.ndim == 1 else y_test
    if y_train.shape[1:] != y_test.shape[1:]:
        raise DatasetError(
            f"{path}: y_train targets have shape {y_train.shape[1:]} but y_test {y_test.shape[1:]}"
        )
    return Dataset(x_train, y_train, x_test, y_test, None, f"npz ({split}, target values) from {path}")
