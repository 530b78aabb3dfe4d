"""Datasets loaded once per worker process and reused by the experiments that name the same data.

An entry is keyed by the dataset spec (with the seed a generated set uses), the data directories, and
the identity of the files it was read from (path, size, modification time, inode): a file replaced on
disk is read again. A few entries at most are kept (least recently used goes first), and their arrays
are read-only, so no experiment can change what the next one gets.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

from prunespec.spec import ImageDataset, NpzDataset, SumDataset
from worker.engine.data.images import IDX_FILES, _locate_images
from worker.engine.data.load import load_dataset
from worker.engine.data.npz import _locate_npz
from worker.engine.data.types import Dataset, DatasetError, _dirs

#: Datasets kept per process. MNIST as float32 is about 220 MB.
MAX_ENTRIES = 4

_Key = tuple[object, ...]
_ENTRIES: OrderedDict[_Key, Dataset] = OrderedDict()
_LOCK = threading.Lock()


def _file_identity(paths: Sequence[Path]) -> tuple[tuple[str, int, int, int], ...]:
    identity = []
    for path in paths:
        stat = path.stat()
        identity.append((str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino))
    return tuple(identity)


def _source_files(
    spec: ImageDataset | NpzDataset, dirs: Sequence[Path], local_paths: bool
) -> list[Path] | None:
    """The files loading ``spec`` would read, or None when it would fail (then it is not cached)."""
    try:
        if isinstance(spec, NpzDataset):
            return None if spec.path is None else [_locate_npz(spec.path, dirs, local_paths)[0]]
        found = _locate_images(spec.name, dirs)
    except DatasetError:
        return None
    if found is None:
        return None
    if found.kind == "npz":
        return [found.path]
    return sorted(found.path / name for name in IDX_FILES if (found.path / name).is_file())


def _read_only(data: Dataset) -> Dataset:
    for array in (data.x_train, data.y_train, data.x_test, data.y_test):
        array.flags.writeable = False
    return data


def cached_dataset(
    spec: SumDataset | ImageDataset | NpzDataset,
    *,
    seed: int,
    data_dirs: Sequence[Path] | None = None,
    local_paths: bool = False,
) -> Dataset:
    """:func:`load_dataset`, answered from this process's cache when the same data was loaded before.

    Args and Raises: as :func:`worker.engine.data.load_dataset`.

    Returns:
        The dataset; its arrays are read-only and may be shared with other experiments.
    """
    dirs = _dirs(data_dirs)
    if isinstance(spec, SumDataset):
        files: tuple[tuple[str, int, int, int], ...] = ()
        used_seed: int | None = spec.seed if spec.seed is not None else seed
    else:
        sources = _source_files(spec, dirs, local_paths)
        if sources is None:  # let the loader raise its own message
            return load_dataset(spec, seed=seed, data_dirs=dirs, local_paths=local_paths)
        files, used_seed = _file_identity(sources), None
    key: _Key = (spec.model_dump_json(), used_seed, tuple(str(d) for d in dirs), local_paths, files)
    with _LOCK:
        if key in _ENTRIES:
            _ENTRIES.move_to_end(key)
            return _ENTRIES[key]
    data = _read_only(load_dataset(spec, seed=seed, data_dirs=dirs, local_paths=local_paths))
    with _LOCK:
        _ENTRIES[key] = data
        _ENTRIES.move_to_end(key)
        while len(_ENTRIES) > MAX_ENTRIES:
            _ENTRIES.popitem(last=False)
    return data


def clear_cache() -> None:
    """Forget every cached dataset (tests; a worker never needs to)."""
    with _LOCK:
        _ENTRIES.clear()


__all__ = ["MAX_ENTRIES", "cached_dataset", "clear_cache"]
