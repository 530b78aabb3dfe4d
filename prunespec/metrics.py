"""The one definition of each metric's good direction (accuracy: higher is better; RMSE, loss: lower).

The figures (Pareto fronts), the listing's sort and the summaries read :func:`higher_is_better`; a new
metric whose larger values are better is added to :data:`HIGHER_IS_BETTER` and nowhere else.
"""

from __future__ import annotations

#: Metrics where a larger value is better; every other metric (rmse, loss) is minimised.
HIGHER_IS_BETTER = frozenset({"accuracy"})


def higher_is_better(metric_name: str | None) -> bool:
    """Whether a larger value of the metric is better ("accuracy": yes; "rmse": no).

    Args:
        metric_name: the metric's name.

    Returns:
        True for metrics in :data:`HIGHER_IS_BETTER`.
    """
    return metric_name in HIGHER_IS_BETTER
