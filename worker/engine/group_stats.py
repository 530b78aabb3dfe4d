"""One group's statistics for the criteria: its probes' statistics aggregated channel by channel.

The statistics pass (``worker.engine.stats``) measures every probe of a dependency group; the criteria
score a channel over all of them. Pure NumPy: this module never imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from worker.engine.criteria import aggregate
from worker.engine.results import LayerStats


def combine(probes: Sequence[LayerStats], group_score: str = "mean") -> LayerStats:
    """One group's statistics for the criteria: its probes' statistics aggregated channel by channel.

    Counts are aggregated as rates (scaled to the primary probe's outputs), moments as values, with
    ``group_score`` (mean, max or sum). ``minimum`` is the primary probe's and ``maximum`` adds the
    widest spread of any probe, so a channel is constant only where it is constant at every probe.
    Histograms and bin edges are the primary probe's. A single probe is returned as it is.

    Args:
        probes: one LayerStats per probe, primary first (as :func:`measure_probes` gives them).
        group_score: how to aggregate: ``mean``, ``max`` or ``sum``. Default mean.

    Returns:
        a LayerStats labelled as the primary one.

    Raises:
        ValueError: no probes, or an unknown ``group_score``.
    """
    if not probes:
        raise ValueError("a group needs at least one probe")
    if len(probes) == 1:
        return probes[0]
    primary = probes[0]
    outputs = max(primary.outputs, 1)

    def rate(field: str) -> np.ndarray:
        rates = [np.asarray(getattr(p, field), np.float64) / max(p.outputs, 1) for p in probes]
        return np.rint(aggregate(rates, group_score) * outputs).astype(np.int64)

    def value(field: str) -> np.ndarray:
        return aggregate([getattr(p, field) for p in probes], group_score)

    spread = np.max(np.stack([p.maximum - p.minimum for p in probes]), axis=0)
    return dataclasses.replace(
        primary,
        active=rate("active"),
        zeros=rate("zeros"),
        mean=value("mean"),
        variance=value("variance"),
        maximum=primary.minimum + spread,
    )
