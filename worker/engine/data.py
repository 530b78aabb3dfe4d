"""Datasets for the engine: generated sums, MNIST and Fashion-MNIST from a data directory, user .npz files.

Everything here is NumPy: no TensorFlow, no downloads. Image files are looked up in the data
directories (``$PRUNELAB_DATA_DIR`` if set, then Keras's cache ``~/.keras/datasets``); the first
directory holding usable files wins. MNIST is read from Keras's ``mnist.npz``, or from the four IDX
files in ``<dir>/mnist/`` or directly in ``<dir>``; Fashion-MNIST from the four IDX files in
``<dir>/fashion-mnist/`` only (the file names are the same as MNIST's, so loose files count as
MNIST). The IDX files are parsed here. Where only the 10,000-image test pair exists it is split
deterministically, the first 80 % for training and the last 20 % for testing (8,000/2,000).

Every failure a user can cause raises :class:`DatasetError`, whose message says what is wrong and how
to fix it.
"""

from __future__ import annotations

import dataclasses
import gzip
import math
import os
import struct
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from backend.spec import ImageDataset, ModelSpec, NpzDataset, Shape, SumDataset

ENV_DATA_DIR = "PRUNELAB_DATA_DIR"
IMAGE_SIZE = 28
IMAGE_CLASSES = 10
IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
KERAS_MNIST_NPZ = "mnist.npz"
TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
IDX_FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
#: Fraction of a lone t10k set held out for testing (the last 2,000 of 10,000).
T10K_TEST_FRACTION = 0.2


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


def default_data_dirs() -> list[Path]:
    """The directories searched for data files, in order.

    Returns:
        ``$PRUNELAB_DATA_DIR`` (when set and not empty, ``~`` expanded), then ``~/.keras/datasets``.
    """
    dirs: list[Path] = []
    env = os.environ.get(ENV_DATA_DIR, "").strip()
    if env:
        dirs.append(Path(env).expanduser())
    dirs.append(Path.home() / ".keras" / "datasets")
    return dirs


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


# --------------------------------------------------------------------------------------------- sum


def _sum_dataset(spec: SumDataset, seed: int) -> Dataset:
    seed = spec.seed if spec.seed is not None else seed
    rng = np.random.default_rng(seed)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        if spec.distribution == "uniform":
            x = rng.uniform(spec.low, spec.high, size=(n, 2))
        else:
            x = rng.normal(spec.mean, spec.std, size=(n, 2))
        x32 = x.astype(np.float32)
        return x32, (x32[:, 0] + x32[:, 1]).reshape(n, 1)

    x_train, y_train = draw(spec.train_samples)
    x_test, y_test = draw(spec.test_samples)
    if spec.distribution == "uniform":
        law = f"uniform[{spec.low:g}, {spec.high:g})"
    else:
        law = f"normal(mean {spec.mean:g}, std {spec.std:g})"
    description = f"sum ({spec.train_samples}/{spec.test_samples}, x ~ {law}, seed {seed}) generated"
    return Dataset(x_train, y_train, x_test, y_test, None, description)


# --------------------------------------------------------------------------------------------- IDX


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


# --------------------------------------------------------------------------------------------- images


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


def _take(array: np.ndarray, count: int | None, field: str, what: str) -> np.ndarray:
    if count is None:
        return array
    if count > array.shape[0]:
        raise DatasetError(
            f"dataset.{field} is {count} but {what} has only {array.shape[0]} examples; "
            f"set dataset.{field} to at most {array.shape[0]} or leave it unset"
        )
    return array[:count]


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


# --------------------------------------------------------------------------------------------- npz


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """The four arrays of an .npz file, loaded without pickle."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DatasetError(
            f"{path}: not a readable .npz file ({exc}); save it with numpy.savez(path, x_train=..., "
            "y_train=..., x_test=..., y_test=...)"
        ) from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise DatasetError(
            f"{path}: holds a single array, not an .npz archive; save the four arrays with "
            "numpy.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)"
        )
    with loaded:
        missing = [key for key in NPZ_KEYS if key not in loaded.files]
        if missing:
            raise DatasetError(
                f"{path}: missing keys {missing} (it has {sorted(loaded.files)}); an .npz dataset needs "
                f"{list(NPZ_KEYS)}"
            )
        arrays: dict[str, np.ndarray] = {}
        for key in NPZ_KEYS:
            try:
                arrays[key] = loaded[key]
            except ValueError as exc:
                raise DatasetError(
                    f"{path}: array '{key}' cannot be loaded without pickle ({exc}); object arrays are "
                    "refused for safety: save plain numeric arrays "
                    "(e.g. numpy.asarray(values, dtype=numpy.float32))"
                ) from None
            except (OSError, zipfile.BadZipFile, EOFError) as exc:
                raise DatasetError(f"{path}: array '{key}' is corrupt ({exc})") from None
    return arrays


def _resolve_npz_path(raw: str, dirs: Sequence[Path]) -> Path:
    path = Path(raw).expanduser()
    if path.is_absolute():
        return path
    base = dirs[0] if dirs else Path.cwd()
    return base / path


def _numeric(array: np.ndarray, key: str, path: Path) -> np.ndarray:
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


def _labels(array: np.ndarray, key: str, path: Path) -> np.ndarray:
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


def _npz_dataset(spec: NpzDataset, dirs: Sequence[Path]) -> Dataset:
    path = _resolve_npz_path(spec.path, dirs)
    if not path.is_file():
        hint = (
            ""
            if Path(spec.path).expanduser().is_absolute()
            else f" (relative paths resolve against {dirs[0] if dirs else Path.cwd()})"
        )
        raise DatasetError(
            f"dataset.path: {path} does not exist{hint}; give the path of an existing .npz file"
        )
    arrays = _read_npz(path)
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


# --------------------------------------------------------------------------------------------- public


def load_dataset(
    spec: SumDataset | ImageDataset | NpzDataset, *, seed: int, data_dirs: Sequence[Path] | None = None
) -> Dataset:
    """Load or generate the dataset a spec names; never downloads.

    Args:
        spec: the dataset spec.
        seed: the experiment seed, used by ``sum`` when ``spec.seed`` is None.
        data_dirs: directories searched in order for image files, the first also resolving relative
            ``npz`` paths; default None means :func:`default_data_dirs`.

    Returns:
        The dataset: float32 inputs (images (n, 28, 28, 1) in [0, 1]); int64 labels of shape (n,) for
        target 'labels', float32 targets otherwise (y is x for target 'input'). 1-D npz inputs or
        value targets become (n, 1).

    Raises:
        DatasetError: files are missing, unreadable or malformed, or train_samples/test_samples ask for
            more examples than exist.
    """
    if isinstance(spec, SumDataset):
        return _sum_dataset(spec, seed)
    dirs = _dirs(data_dirs)
    if isinstance(spec, ImageDataset):
        return _image_dataset(spec, dirs)
    return _npz_dataset(spec, dirs)


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


def available_datasets(data_dirs: Sequence[Path] | None = None) -> dict[str, str]:
    """The built-in datasets that can be loaded now, and where each would come from.

    Only checks which files exist; nothing is parsed. ``npz`` is not listed (it names its own file).

    Args:
        data_dirs: directories searched in order; default None means :func:`default_data_dirs`.

    Returns:
        Name -> "generated" for ``sum``, or the file or directory ``mnist``/``fashion-mnist`` load from.
        Image datasets with no (or only an incomplete set of) files are left out.
    """
    dirs = _dirs(data_dirs)
    out = {"sum": "generated"}
    for name in ("mnist", "fashion-mnist"):
        try:
            found = _locate_images(name, dirs)
        except DatasetError:
            continue
        if found is not None:
            out[name] = found.where()
    return out
