"""The entry points: load the dataset a spec names, and list the built-in datasets available now."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

from prunespec.datapaths import redact_dirs
from prunespec.spec import ImageDataset, NpzDataset, SumDataset
from worker.engine.data.generated import _sum_dataset
from worker.engine.data.images import _image_dataset, _locate_images
from worker.engine.data.npz import _npz_dataset
from worker.engine.data.types import Dataset, DatasetError, _dirs

logger = logging.getLogger(__name__)


def load_dataset(
    spec: SumDataset | ImageDataset | NpzDataset,
    *,
    seed: int,
    data_dirs: Sequence[Path] | None = None,
    local_paths: bool = False,
) -> Dataset:
    """Load or generate the dataset a spec names; never downloads.

    Args:
        spec: the dataset spec.
        seed: the experiment seed, used by ``sum`` when ``spec.seed`` is None.
        data_dirs: directories searched in order for image files and ``npz`` paths; default None means
            :func:`default_data_dirs`.
        local_paths: the caller's own files (``prunelab run``): an ``npz`` path may be absolute or
            start with ``~`` (a relative one resolves against the first data directory), and messages
            name directories in full. Default False (the service's worker): the ``npz`` path must stay
            inside the data directories (``prunespec.datapaths.confine``; a stored spec is not trusted),
            and messages and the description name no directory (``<data directory N>``; the full
            message is logged).

    Returns:
        The dataset: float32 inputs (images (n, 28, 28, 1) in [0, 1]); int64 labels of shape (n,) for
        target 'labels', float32 targets otherwise (y is x for target 'input'). 1-D npz inputs or
        value targets become (n, 1).

    Raises:
        DatasetError: files are missing, unreadable or malformed, an ``npz`` path leaves the data
            directories, or train_samples/test_samples ask for more examples than exist.
    """
    if isinstance(spec, SumDataset):
        return _sum_dataset(spec, seed)
    dirs = _dirs(data_dirs)
    if local_paths:
        if isinstance(spec, ImageDataset):
            return _image_dataset(spec, dirs)
        return _npz_dataset(spec, dirs, local_paths=True)
    try:
        data = _image_dataset(spec, dirs) if isinstance(spec, ImageDataset) else _npz_dataset(spec, dirs)
    except DatasetError as error:
        logger.warning("dataset %s: %s", spec.name, error)  # the operator sees where it looked
        raise DatasetError(redact_dirs(str(error), dirs)) from None
    return dataclasses.replace(data, description=redact_dirs(data.description, dirs))


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
