"""Why a run of cycles stopped: every stop reason the engine, the worker and the service record,
defined once with the words the clients print for it."""

from __future__ import annotations

from enum import StrEnum


class StopReason(StrEnum):
    """A run's stop reason (stored as its value in ``experiments.stop_reason``)."""

    nothing_removed = "nothing_removed"
    max_cycles = "max_cycles"
    tolerance = "tolerance"
    cancelled = "cancelled"
    time_limit = "time_limit"

    @property
    def description(self) -> str:
        """What a person reads for this reason."""
        return _DESCRIPTIONS[self]


_DESCRIPTIONS = {
    StopReason.nothing_removed: "the criterion removed no more units",
    StopReason.max_cycles: "reached the spec's pruning.max_cycles",
    StopReason.tolerance: "the last cycle's metric fell beyond the tolerance and no back-off retry was left",
    StopReason.cancelled: "cancelled",
    StopReason.time_limit: "stopped at the worker's wall-time limit; the finished cycles stand",
}


def describe(reason: str) -> str:
    """The words for a recorded stop reason (the reason itself when it is not one of ours)."""
    try:
        return StopReason(reason).description
    except ValueError:
        return reason
