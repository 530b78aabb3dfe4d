"""Rows of a graph experiment as the worker's recorder writes them, shared by the API and browser tests:
a model resized by group, and a group's activation statistics (recorded under the group's name)."""

from __future__ import annotations

import numpy as np

from backend.arrays import encode
from backend.models import LayerStatsRow
from prunespec.groups import with_group_widths
from prunespec.layers import ModelSpec


def resized(model: ModelSpec, widths: dict[str, int]) -> ModelSpec:
    """The model with new widths for the named groups (every producer of a group resized).

    Args:
        model: a validated model.
        widths: channels by group name.
    """
    return with_group_widths(model, widths)


def group_stats_row(
    group: str, zeros: np.ndarray, *, outputs: int, bins: int = 3, seed: int = 0
) -> LayerStatsRow:
    """A group's statistics row: channel ``i`` was zero on ``zeros[i]`` of ``outputs`` measured values.

    Args:
        group: the group's name.
        zeros: zeros per channel (its length is the group's width).
        outputs: values measured per channel.
        bins: histogram bins. Default 3.
        seed: seeds the histogram and the other per-channel arrays. Default 0.
    """
    rng = np.random.default_rng(seed)
    width = len(zeros)
    histogram, edges = np.histogram(rng.gamma(1.5, 0.6, 500), bins=bins, range=(0.0, 6.0))
    return LayerStatsRow(
        layer=group,
        units=width,
        outputs=outputs,
        summary={"apoz_mean": float(np.mean(zeros) / outputs), "dead": int((zeros >= outputs).sum())},
        histogram=histogram.tolist(),
        bin_edges=edges.tolist(),
        active=encode("active", outputs - zeros),
        zeros=encode("zeros", zeros),
        mean=encode("mean", rng.random(width)),
        variance=encode("variance", rng.gamma(2.0, 0.05, width)),
        minimum=encode("minimum", np.zeros(width)),
        maximum=encode("maximum", rng.random(width) * 5),
        unit_histograms=encode("unit_histograms", rng.integers(0, 50, (width, bins))),
    )
