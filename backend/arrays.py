"""Per-unit arrays as compact little-endian blobs (the layer_stats table) and back."""

from __future__ import annotations

import numpy as np

#: dtype of every stored per-unit array, by column name.
DTYPES: dict[str, str] = {
    "active": "<i8",
    "zeros": "<i8",
    "mean": "<f4",
    "variance": "<f4",
    "minimum": "<f4",
    "maximum": "<f4",
    "unit_histograms": "<i4",
    "scores": "<f4",
}


def encode(column: str, values: np.ndarray) -> bytes:
    """The column's array as bytes in its stored dtype."""
    return np.ascontiguousarray(values, dtype=DTYPES[column]).tobytes()


def decode(column: str, blob: bytes, units: int | None = None) -> np.ndarray:
    """The stored array; ``unit_histograms`` comes back as (units, bins) when ``units`` is given.

    Raises:
        ValueError: the blob's size does not fit the dtype or the unit count.
    """
    values = np.frombuffer(blob, dtype=DTYPES[column])
    if column == "unit_histograms" and units:
        if values.size % units:
            raise ValueError(f"{column}: {values.size} values do not split into {units} units")
        return values.reshape(units, values.size // units)
    return values
