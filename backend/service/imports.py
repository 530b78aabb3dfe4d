"""Adding a local run (``prunelab run``'s results.json) to the history, as a succeeded experiment.

The run is recorded through the same functions a worker uses (``backend.service.recording``): the
experiment row is created ``running`` under a lease of its own, each cycle's epochs and cycle go in as
the worker would write them, and ``finish`` marks it succeeded, all in the caller's transaction (an
invalid run leaves nothing behind). The server computes each cycle's model, parameters and FLOPs from the
spec and the cycle's widths (the spec package's costs, as the worker stores them); per-unit activation
statistics are not in results.json, so an imported cycle has none. The experiment's
``progress_detail`` says ``{"source": "local-run"}`` and it carries the tag ``local-run``.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import asdict

from sqlalchemy.orm import Session

from backend.models import Cycle, Experiment, Status, utcnow
from backend.progress import IMPORTED, Source
from backend.schemas import ExperimentCreated
from backend.schemas_exchange import MAX_IMPORT_MODEL_BYTES, ExperimentImport, ImportedCycle, RunResults
from backend.service import recording
from backend.service.commands import Author, placement
from backend.service.errors import InvalidInput
from backend.service.runs import Lease
from prunespec.costs import model_cost
from prunespec.layers import ModelSpec
from prunespec.metrics import higher_is_better

#: The tag an imported run carries (its progress says :data:`~backend.progress.IMPORTED`).
LOCAL_RUN = Source.local_run.value
#: Who an imported run's lease names.
IMPORT_WORKER = "prunelab push (local run)"


def _check_cycles(results: RunResults) -> int:
    """The final cycle's index, after checking the cycles are 0..n-1, the final one was kept and each
    epoch belongs to its cycle.

    Raises:
        InvalidInput: naming the field under ``results``.
    """
    cycles = results.cycles
    if not cycles:
        raise InvalidInput(
            ("body", "results", "cycles"), "the run finished no cycle: there is nothing to add"
        )
    for position, cycle in enumerate(cycles):
        if cycle.index != position:
            raise InvalidInput(
                ("body", "results", "cycles", position, "index"),
                f"cycles must be numbered 0, 1, 2, ... in order; found {cycle.index} at position {position}",
            )
        if cycle.pruned_from is not None and cycle.pruned_from >= cycle.index:
            raise InvalidInput(
                ("body", "results", "cycles", position, "pruned_from"),
                f"must name an earlier cycle than {cycle.index}, got {cycle.pruned_from}",
            )
        for number, epoch in enumerate(cycle.epochs):
            if epoch.cycle != cycle.index:
                raise InvalidInput(
                    ("body", "results", "cycles", position, "epochs", number, "cycle"),
                    f"an epoch of cycle {cycle.index} says cycle {epoch.cycle}",
                )
    final = results.final_index
    if final is None or final >= len(cycles) or not cycles[final].accepted:
        raise InvalidInput(
            ("body", "results", "final_index"),
            f"must name a kept (accepted) cycle among the {len(cycles)} cycles, got {final}",
        )
    return final


def _model_spec(model: ModelSpec, cycle: ImportedCycle, position: int) -> ModelSpec:
    """The model cycle ``position`` trained: the spec's model with the cycle's widths.

    Raises:
        InvalidInput: the widths do not fit the spec's model.
    """
    try:
        return model.with_widths(cycle.widths)
    except ValueError as exc:  # unknown layer names, or widths the model refuses
        raise InvalidInput(
            ("body", "results", "cycles", position, "widths"), f"do not fit the spec's model: {exc}"
        ) from None


def _cycle_row(model: ModelSpec, cycle: ImportedCycle, position: int) -> Cycle:
    """An unsaved cycle row, costs computed from the cycle's model (``experiment_id`` unset)."""
    spec = _model_spec(model, cycle, position)
    cost = model_cost(spec)
    return Cycle(
        index=cycle.index,
        model_spec=spec.model_dump(mode="json"),
        widths=dict(cycle.widths),
        widths_after=dict(cycle.widths_after),
        params=cost.params,
        flops=cost.flops,
        layer_costs=[asdict(layer) for layer in cost.layers],
        removed=dict(cycle.removed),
        folded=dict(cycle.folded),
        merged=dict(cycle.merged),
        metric_name=cycle.metric_name,
        loss=cycle.loss,
        metric=cycle.metric,
        val_loss=cycle.val_loss,
        val_metric=cycle.val_metric,
        train_seconds=cycle.train_seconds,
        stats_seconds=cycle.stats_seconds,
        prune_seconds=cycle.prune_seconds,
        accepted=cycle.accepted,
        pruned_from=cycle.pruned_from
        if cycle.pruned_from is not None or cycle.index == 0
        else cycle.index - 1,
        layers=[],
    )


def _final_model(encoded: str | None) -> bytes | None:
    """The decoded ``final_model``, or None.

    Raises:
        InvalidInput: not base64, over the size cap, or not a ``.keras`` (zip) file.
    """
    if encoded is None:
        return None
    try:
        content = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(("body", "final_model"), "is not base64") from None
    if len(content) > MAX_IMPORT_MODEL_BYTES:
        raise InvalidInput(
            ("body", "final_model"), f"{len(content):,} bytes; at most {MAX_IMPORT_MODEL_BYTES:,} are stored"
        )
    if not content.startswith(b"PK"):
        raise InvalidInput(("body", "final_model"), "is not a .keras file (a zip archive)")
    return content


def import_run(
    session: Session, request: ExperimentImport, author: Author | None = None
) -> ExperimentCreated:
    """Store a local run as a succeeded experiment with its cycles and epochs.

    Args:
        session: an open session; the caller commits (everything or, on an error, nothing).
        request: the run's results, tags, notes and optionally its final model.
        author: its owner and project (from the caller's identity). Default None: ``request.owner``
            in the default project.

    Returns:
        The new experiment's id and status (``succeeded``).

    Raises:
        InvalidInput: the cycles are out of order, the final cycle was not kept, a cycle's widths do not
            fit the spec's model, or the final model is not a small ``.keras`` file (``field`` names it).
    """
    results = request.results
    spec = results.spec
    final_position = _check_cycles(results)
    model = _final_model(request.final_model)
    rows = [_cycle_row(spec.model, cycle, position) for position, cycle in enumerate(results.cycles)]
    tags = list(dict.fromkeys([*request.tags, LOCAL_RUN]))  # the request left room for it
    initial = model_cost(spec.model)
    now = utcnow()
    experiment = Experiment(
        name=spec.name,
        **placement(author, request.owner),
        tags=tags,
        notes=request.notes,
        spec=spec.model_dump(mode="json"),
        seed=spec.seed,
        status=Status.running.value,
        attempts=1,
        worker=IMPORT_WORKER,
        started_at=now,
        heartbeat_at=now,
        progress_detail=IMPORTED.stored(),
        initial_params=initial.params,
        initial_flops=initial.flops,
    )
    session.add(experiment)
    session.flush()
    lease = Lease(experiment_id=experiment.id, attempt=1, worker=IMPORT_WORKER)
    versions = results.versions
    if "tensorflow" in versions or "keras" in versions:
        recording.record_versions(session, lease, versions.get("tensorflow", ""), versions.get("keras", ""))
    direction = higher_is_better(results.cycles[0].metric_name)
    for position, (cycle, row) in enumerate(zip(results.cycles, rows, strict=True)):
        for epoch in cycle.epochs:
            values = recording.EpochValues(
                cycle=epoch.cycle,
                epoch=epoch.epoch,
                loss=epoch.loss,
                metric=epoch.metric,
                val_loss=epoch.val_loss,
                val_metric=epoch.val_metric,
                seconds=epoch.seconds,
            )
            progress = (position + 1) / len(rows)
            recording.record_epoch(
                session, lease, values, progress=progress, progress_detail=IMPORTED, now=now
            )
        trained = None
        if model is not None and position == final_position:
            trained = recording.ModelFile(f"cycle-{cycle.index}-trained.keras", model)
        recording.record_cycle(session, lease, row, trained, None, higher_is_better=direction, now=now)
    final_index = results.cycles[final_position].index
    recording.finish(session, lease, results.stop_reason, final_index, now=now, with_model=model is not None)
    return ExperimentCreated(id=experiment.id, status=Status.succeeded)
