"""Uploaded data sets: an .npz of x_train, y_train, x_test, y_test, or MNIST-style IDX files.

An .npz is checked from the zip directory and every array's ``.npy`` header (dtype and shape, against the
limits) before any array is loaded; arrays load without pickle, numeric dtypes only, and NaN or infinity
is refused naming the key. IDX files (gzip or raw) are read with a bound on their decompressed size and
written out as such an .npz.
"""

from __future__ import annotations

import gzip
import math
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from worker.ingest.errors import Refused
from worker.ingest.limits import IngestLimits
from worker.ingest.zipcheck import check_zip

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
#: dtype kinds an array may have: bool, signed and unsigned integers, floats.
NUMERIC_KINDS = frozenset("biuf")
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
#: Share of a single IDX pair (images + labels) kept for testing when no separate test pair is given.
TEST_SHARE = 1 / 6


def _header(
    archive: zipfile.ZipFile, entry: zipfile.ZipInfo, key: str
) -> tuple[tuple[int, ...], np.dtype[Any]]:
    """An .npy entry's shape and dtype, read from its header alone."""
    try:
        with archive.open(entry) as handle:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, _fortran, dtype = np.lib.format.read_array_header_1_0(handle, max_header_size=10_000)
            elif version in ((2, 0), (3, 0)):
                shape, _fortran, dtype = np.lib.format.read_array_header_2_0(handle, max_header_size=10_000)
            else:
                raise ValueError(f"unknown .npy version {version}")
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, SyntaxError) as exc:
        raise Refused(f"array '{key}' has no readable .npy header ({exc})") from None
    return tuple(int(d) for d in shape), dtype


def check_headers(path: Path, limits: IngestLimits) -> dict[str, tuple[tuple[int, ...], np.dtype[Any]]]:
    """Every needed array's shape and dtype, refused before loading when one is not allowed.

    Raises:
        Refused: a missing key, a non-numeric (e.g. object) dtype, or a shape over the limits.
    """
    entries = check_zip(path, limits, ".npz file")
    by_key = {entry.filename[:-4]: entry for entry in entries if entry.filename.endswith(".npy")}
    missing = [key for key in NPZ_KEYS if key not in by_key]
    if missing:
        raise Refused(f"the .npz file lacks {missing} (it has {sorted(by_key)}); it needs {list(NPZ_KEYS)}")
    headers = {}
    with zipfile.ZipFile(path) as archive:
        for key in NPZ_KEYS:
            shape, dtype = _header(archive, by_key[key], key)
            if dtype.hasobject or dtype.kind not in NUMERIC_KINDS or dtype.fields is not None:
                raise Refused(
                    f"array '{key}' has dtype {dtype}; only numeric arrays (bool, int, float) are accepted "
                    "(object arrays would need pickle)"
                )
            elements = math.prod(shape)
            if elements > limits.max_array_elements:
                raise Refused(
                    f"array '{key}' declares shape {shape} ({elements:,} elements); at most "
                    f"{limits.max_array_elements:,} are allowed"
                )
            if elements * dtype.itemsize > by_key[key].file_size:
                raise Refused(f"array '{key}' declares shape {shape} but its entry holds fewer bytes")
            headers[key] = (shape, dtype)
    for split in ("train", "test"):
        nx, ny = headers[f"x_{split}"][0][:1], headers[f"y_{split}"][0][:1]
        if not nx or nx != ny:
            raise Refused(
                f"x_{split} and y_{split} need one example each along the first axis ({nx} vs {ny})"
            )
    if headers["x_train"][0][1:] != headers["x_test"][0][1:]:
        raise Refused(
            f"x_train examples have shape {headers['x_train'][0][1:]} but x_test {headers['x_test'][0][1:]}"
        )
    return headers


def inspect_npz(path: Path, limits: IngestLimits) -> dict[str, Any]:
    """Shapes, dtypes and class count (or value range) of an uploaded .npz data set.

    Raises:
        Refused: the first check that fails (headers, then values: NaN or infinity names the key).
    """
    headers = check_headers(path, limits)
    arrays: dict[str, np.ndarray] = {}
    try:
        with np.load(path, allow_pickle=False) as loaded:
            for key in NPZ_KEYS:
                arrays[key] = loaded[key]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise Refused(f"the .npz file cannot be loaded without pickle ({exc})") from None
    for key, array in arrays.items():
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
            raise Refused(
                f"array '{key}' holds {bad:,} NaN or infinite values; only finite numbers are accepted"
            )
    summary: dict[str, Any] = {
        "arrays": {
            key: {"shape": list(shape), "dtype": str(dtype)} for key, (shape, dtype) in headers.items()
        },
        "train_examples": int(headers["x_train"][0][0]),
        "test_examples": int(headers["x_test"][0][0]),
        "input_shape": list(headers["x_train"][0][1:]) or [1],
        "target_shape": list(headers["y_train"][0][1:]) or [1],
    }
    y = np.concatenate([arrays["y_train"].reshape(-1), arrays["y_test"].reshape(-1)])
    labels = arrays["y_train"].ndim == 1 and y.size > 0 and y.dtype.kind in "biu" and int(y.min()) >= 0
    summary["classes"] = int(y.max()) + 1 if labels else None
    summary["value_range"] = [float(y.min()), float(y.max())] if y.size else None
    return summary


def _read_bounded(path: Path, most: int) -> bytes:
    """A file's bytes, gunzipped when it is gzip, refused when they exceed ``most``."""
    with path.open("rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    try:
        opener: Any = gzip.open if gzipped else open
        with opener(path, "rb") as handle:
            content: bytes = handle.read(most + 1)
    except (OSError, EOFError) as exc:
        raise Refused(f"an IDX file cannot be read ({exc})") from None
    if len(content) > most:
        raise Refused(f"an IDX file holds over {most:,} bytes once decompressed")
    return content


def _parse_idx(content: bytes, label: str) -> np.ndarray:
    if len(content) < 8:
        raise Refused(f"{label} is too short to be an IDX file")
    magic, count = struct.unpack(">ii", content[:8])
    if magic == IMAGES_MAGIC:
        if len(content) < 16:
            raise Refused(f"{label} is too short to be an IDX image file")
        rows, cols = struct.unpack(">ii", content[8:16])
        if min(count, rows, cols) < 1 or len(content) != 16 + count * rows * cols:
            raise Refused(
                f"{label}: {count} images of {rows}×{cols} do not match its {len(content) - 16:,} bytes"
            )
        images = np.frombuffer(content, dtype=np.uint8, offset=16).reshape(count, rows, cols, 1)
        return images.astype(np.float32) / 255.0
    if magic == LABELS_MAGIC:
        if count < 1 or len(content) != 8 + count:
            raise Refused(f"{label}: {count} labels do not match its {len(content) - 8:,} bytes")
        return np.frombuffer(content, dtype=np.uint8, offset=8).astype(np.int64)
    raise Refused(f"{label} is not an IDX image or label file (magic number {magic})")


def idx_to_npz(paths: list[Path], names: list[str], out: Path, limits: IngestLimits) -> None:
    """Write MNIST-style IDX files (two: one images/labels pair, split 5:1; or four: train and test
    pairs, told apart by ``train`` in the file name, else by size) as an .npz data set.

    Raises:
        Refused: not 2 or 4 files, not IDX, or images and labels that do not pair up.
    """
    if len(paths) not in (2, 4):
        raise Refused(
            f"send the IDX files as one images/labels pair or two (train and test), not {len(paths)}"
        )
    most = limits.max_array_elements
    parsed = [
        (name, _parse_idx(_read_bounded(path, most), name)) for path, name in zip(paths, names, strict=True)
    ]
    images = [(n, a) for n, a in parsed if a.ndim == 4]
    labels = [(n, a) for n, a in parsed if a.ndim == 1]
    if len(images) != len(labels):
        raise Refused(f"{len(images)} image files and {len(labels)} label files do not pair up")

    def order(item: tuple[str, np.ndarray]) -> tuple[int, int]:
        return (0 if "train" in item[0].lower() else 1, -item[1].shape[0])

    images.sort(key=order)
    labels.sort(key=order)
    for (image_name, x), (label_name, y) in zip(images, labels, strict=True):
        if x.shape[0] != y.shape[0]:
            raise Refused(f"{image_name} has {x.shape[0]} images but {label_name} has {y.shape[0]} labels")
    if len(images) == 1:
        x, y = images[0][1], labels[0][1]
        cut = x.shape[0] - max(1, int(x.shape[0] * TEST_SHARE))
        if cut < 1:
            raise Refused("one IDX pair needs at least two examples to split into train and test")
        arrays = {"x_train": x[:cut], "y_train": y[:cut], "x_test": x[cut:], "y_test": y[cut:]}
    else:
        arrays = {
            "x_train": images[0][1],
            "y_train": labels[0][1],
            "x_test": images[1][1],
            "y_test": labels[1][1],
        }
    write_npz(out, arrays)


def write_npz(out: Path, arrays: dict[str, np.ndarray]) -> None:
    """An .npz whose bytes depend on the arrays only (fixed entry dates), so equal data hashes equally."""
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for key, array in arrays.items():
            entry = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with archive.open(entry, "w", force_zip64=True) as handle:
                np.lib.format.write_array(handle, np.ascontiguousarray(array), allow_pickle=False)
