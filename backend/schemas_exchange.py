"""Request and response bodies of an experiment's export and of a local run's import (see
:mod:`backend.schemas`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from backend.progress import Source
from backend.schemas import (
    MAX_TAGS,
    CycleDetail,
    EpochOut,
    ExperimentSummary,
    Notes,
    Owner,
    RequestBody,
    Schema,
    Tags,
    experiment_path,
)
from prunespec.spec import ExperimentSpec
from prunespec.stops import StopReason

# --------------------------------------------------------------------------------------------- export, import


def export_path(experiment_id: int) -> str:
    """The API path that downloads one experiment's cycles and epochs (``?format=json|csv&what=...``)."""
    return f"{experiment_path(experiment_id)}/export"


class ExportQuery(RequestBody):
    """What ``GET /api/experiments/{id}/export`` sends.

    Attributes:
        format: ``json`` (spec, summary, cycles and epochs in one document) or ``csv``. Default ``json``.
        what: the CSV's rows: ``cycles`` (one per cycle) or ``epochs`` (one per training epoch). Default
            ``cycles``; JSON holds both.
    """

    format: Literal["json", "csv"] = "json"
    what: Literal["cycles", "epochs"] = "cycles"


class ExperimentExport(Schema):
    """One experiment as a self-contained document: what ran, how it ended, every cycle and epoch.

    Attributes:
        format: the document's version, ``prunelab-export/1``.
        experiment: the summary columns (status, stop reason, final sizes and metric, ...).
        spec: the spec as stored (presets expanded, defaults filled in).
        final_cycle: the cycle whose model is the result (None before one was kept).
        cycles: every finished cycle in full; ``accepted`` False marks a rejected one.
        epochs: every training epoch, by cycle then epoch.
    """

    format: Literal["prunelab-export/1"] = "prunelab-export/1"
    experiment: ExperimentSummary
    spec: dict[str, Any]
    notes: str
    final_cycle: int | None
    cycles: list[CycleDetail]
    epochs: list[EpochOut]


#: Most cycles an imported run may hold (a spec allows at most this many ``max_cycles``).
MAX_IMPORT_CYCLES = 1000
#: Most epochs one imported cycle may hold.
MAX_IMPORT_EPOCHS = 10_000
#: Largest final model an import may carry, in bytes once decoded (the request's body cap applies too).
MAX_IMPORT_MODEL_BYTES = 512 * 1024
LayerName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Count = Annotated[int, Field(ge=0, le=10**15)]
Units = Annotated[list[Annotated[int, Field(ge=0, le=10**7)]], Field(max_length=100_000)]


class ImportedEpoch(BaseModel):
    """One epoch of a local run's cycle, as ``results.json`` holds it (extra fields are ignored)."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    cycle: int = Field(ge=0, le=MAX_IMPORT_CYCLES)
    epoch: int = Field(ge=0, le=MAX_IMPORT_EPOCHS)
    loss: float | None = None
    metric: float | None = None
    val_loss: float | None = None
    val_metric: float | None = None
    seconds: float = Field(default=0.0, ge=0)


class ImportedCycle(BaseModel):
    """One cycle of a local run, as ``results.json`` holds it (``stats`` and ``layer_costs`` are ignored:
    the server computes the costs from the widths; per-unit statistics are not in the file)."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    index: int = Field(ge=0, le=MAX_IMPORT_CYCLES)
    widths: Annotated[dict[LayerName, Count], Field(max_length=10_000)]
    widths_after: Annotated[dict[LayerName, Count], Field(max_length=10_000)]
    params: Count
    flops: Count
    metric_name: str = Field(min_length=1, max_length=32)
    loss: float | None = None
    metric: float | None = None
    val_loss: float | None = None
    val_metric: float | None = None
    removed: Annotated[dict[LayerName, Units], Field(max_length=10_000)] = Field(default_factory=dict)
    folded: Annotated[dict[LayerName, Units], Field(max_length=10_000)] = Field(default_factory=dict)
    merged: Annotated[dict[LayerName, Units], Field(max_length=10_000)] = Field(default_factory=dict)
    epochs: Annotated[list[ImportedEpoch], Field(max_length=MAX_IMPORT_EPOCHS)] = Field(default_factory=list)
    train_seconds: float = Field(default=0.0, ge=0)
    stats_seconds: float = Field(default=0.0, ge=0)
    prune_seconds: float = Field(default=0.0, ge=0)
    accepted: bool = True
    #: default: the cycle before (files written before ``pruning.backoff`` existed)
    pruned_from: int | None = Field(default=None, ge=0, le=MAX_IMPORT_CYCLES)


class RunResults(BaseModel):
    """A ``prunelab run`` directory's ``results.json`` (``worker.local_run.results_document``)."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    spec: ExperimentSpec
    versions: Annotated[
        dict[Annotated[str, Field(max_length=32)], Annotated[str, Field(max_length=64)]], Field(max_length=20)
    ] = Field(default_factory=dict)
    #: one of the engine's reasons: a run stopped for any other reason was not written by ``prunelab run``
    stop_reason: StopReason
    final_index: int | None = Field(ge=0, le=MAX_IMPORT_CYCLES)
    cycles: Annotated[list[ImportedCycle], Field(max_length=MAX_IMPORT_CYCLES)]


class ExperimentImport(RequestBody):
    """A local run to add to the history (``prunelab push RUN_DIR``).

    Attributes:
        results: the run's ``results.json``.
        owner, tags, notes: as for a new experiment; the import adds the tag ``local-run``, so at most
            19 others.
        final_model: the run's ``final.keras``, base64, at most 512 KiB decoded; omitted: the numbers only.
    """

    results: RunResults
    owner: Owner = "anonymous"
    tags: Tags = Field(default_factory=list)
    notes: Notes = ""
    final_model: str | None = Field(default=None, max_length=(MAX_IMPORT_MODEL_BYTES * 4) // 3 + 4)

    @field_validator("tags")
    @classmethod
    def _room_for_local_run(cls, tags: list[str]) -> list[str]:
        marker = Source.local_run.value
        if marker not in tags and len(tags) >= MAX_TAGS:
            raise ValueError(f"at most {MAX_TAGS - 1} tags besides {marker!r}, which every import carries")
        return tags
