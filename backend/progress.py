"""An experiment's live progress: what its latest epoch said, and the stage after training.

One record with one set of writers and readers: the worker writes an epoch's numbers
(:meth:`ProgressDetail.of_epoch`), a benchmark run its stage (:meth:`ProgressDetail.benchmarking`,
:meth:`ProgressDetail.without_stage`), an import its source (:data:`IMPORTED`); the API returns it as
``ExperimentOut.progress_detail`` (its fields are in the OpenAPI schema), the event stream reads its
``stage``, and the experiment page (frontend/js/pages/experiment.js) shows it. It is stored as JSON in
``experiments.progress_detail`` with unset fields left out; a stored document is read back leniently
(:meth:`ProgressDetail.read`): a key this version does not know is dropped, not an error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError


class Stage(StrEnum):
    """What an experiment does after training (none while it trains)."""

    #: its cycles' models are converted to TFLite and timed
    benchmarking = "benchmarking"


class Source(StrEnum):
    """Where an experiment's cycles came from, when not from this service's workers."""

    #: uploaded with ``prunelab push`` from a ``prunelab run`` on someone's machine
    local_run = "local-run"


class ProgressDetail(BaseModel):
    """The latest epoch of a running experiment (every field unset before the first), its stage
    after training, and where an imported run came from."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    #: the cycle being trained (0 is the unpruned model)
    cycle: int | None = None
    #: the epoch just finished, counted from 1
    epoch: int | None = None
    #: epochs this cycle trains
    epochs: int | None = None
    #: the metric's name, e.g. ``accuracy``
    metric_name: str | None = None
    loss: float | None = None
    metric: float | None = None
    val_loss: float | None = None
    val_metric: float | None = None
    #: what happens after training (None while training, and once it is over)
    stage: Stage | None = None
    #: the cycles being benchmarked, while ``stage`` is ``benchmarking``
    benchmark_cycles: list[int] | None = None
    #: where an imported run came from (None for the service's own runs)
    source: Source | None = None

    @classmethod
    def of_epoch(
        cls,
        *,
        cycle: int,
        epoch: int,
        epochs: int,
        metric_name: str,
        loss: float | None,
        metric: float | None,
        val_loss: float | None,
        val_metric: float | None,
    ) -> ProgressDetail:
        """An epoch's progress (``epoch`` counted from 1); a value that is not finite is left out."""
        return cls(
            cycle=cycle,
            epoch=epoch,
            epochs=epochs,
            metric_name=metric_name,
            loss=_finite(loss),
            metric=_finite(metric),
            val_loss=_finite(val_loss),
            val_metric=_finite(val_metric),
        )

    @classmethod
    def read(cls, stored: Any) -> ProgressDetail:
        """The progress a stored document says; an empty one for a document that is not one."""
        if not isinstance(stored, Mapping):
            return cls()
        try:
            return cls.model_validate(stored)
        except ValidationError:
            return cls()

    def stored(self) -> dict[str, Any]:
        """The JSON document to store: set fields only."""
        return self.model_dump(mode="json", exclude_none=True)

    def benchmarking(self, cycles: Sequence[int]) -> ProgressDetail:
        """This progress, now benchmarking ``cycles``."""
        return self.model_copy(update={"stage": Stage.benchmarking, "benchmark_cycles": list(cycles)})

    def without_stage(self) -> ProgressDetail:
        """This progress with its stage (and the cycles it names) dropped."""
        return self.model_copy(update={"stage": None, "benchmark_cycles": None})


#: An imported run's progress: nothing but where it came from.
IMPORTED = ProgressDetail(source=Source.local_run)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
