"""A stored spec's dataset path, checked again before the service reuses the spec (rerun)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from backend.service.errors import InvalidInput
from prunespec.datapaths import PathOutsideDataDirs, check_request_path

#: Where a spec's dataset path is, as a 422 names it.
DATASET_PATH_FIELD = ("spec", "dataset", "path")


def require_inside_data_dirs(spec: Mapping[str, Any]) -> None:
    """Refuse a stored ``npz`` spec whose path leaves the data directories (in a request only).

    A spec saved before paths were confined may name any file; rerunning it must not reach it.

    Args:
        spec: the spec as stored (plain JSON).

    Raises:
        InvalidInput: on ``spec.dataset.path``, with ``prunespec.datapaths.OUTSIDE_DATA_DIRS``.
    """
    dataset = spec.get("dataset")
    if not isinstance(dataset, Mapping) or dataset.get("name") != "npz":
        return
    path = dataset.get("path")
    if not isinstance(path, str):
        return  # the spec's own validation refuses it
    try:
        check_request_path(path)
    except PathOutsideDataDirs as exc:
        raise InvalidInput(DATASET_PATH_FIELD, str(exc)) from None
