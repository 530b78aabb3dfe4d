"""Changing experiments: create, edit (tags, notes), cancel, rerun and delete.

Each command is safe against a worker acting on the same experiment at the same moment: state changes
are single conditional UPDATE/DELETE statements whose WHERE clause states the precondition, so the
database decides who wins. A worker claims with ``UPDATE ... SET status='running' WHERE id=:id AND
status='queued'``; an experiment cancelled or deleted while queued is therefore never started.

Creating commits the row first and only then enqueues its id, so a worker never receives an id it
cannot read. Creating and rerunning refuse a spec over the server's cost limits (``backend.limits``)
before anything is saved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pydantic
from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.orm import Session

from backend.limits import CostLimits, over_limits
from backend.models import (
    Artifact,
    Cycle,
    EpochRow,
    Experiment,
    LayerStatsRow,
    Status,
    TFLiteBenchmark,
    utcnow,
)
from backend.schemas import (
    ExperimentCreate,
    ExperimentCreated,
    ExperimentDetail,
    ExperimentEdit,
    ExperimentSummary,
)
from backend.service import catalog, runs, spec_paths
from backend.service.errors import Conflict, InvalidInput, NotFound
from backend.service.ports import Queue, dispatch_saved
from backend.service.queries import get_experiment, get_summary
from prunespec.costs import model_cost
from prunespec.spec import ExperimentSpec

#: Where a spec's dataset name is, as a 422 names it.
DATASET_NAME_FIELD = ("spec", "dataset", "name")


@dataclass(frozen=True)
class Author:
    """Who creates an experiment and where it goes (from the caller's identity, never the body).

    Attributes:
        name: the ``owner`` text.
        user_id: the user (None: the local admin when authentication is off).
        project_id: the project it belongs to (a rerun: None, the source's project).
    """

    name: str
    user_id: int | None
    project_id: int | None


def placement(author: Author | None, owner: str) -> dict[str, Any]:
    """The ``owner``, ``owner_id`` and ``project_id`` columns of a new experiment.

    Args:
        author: who creates it and where (None: ``owner`` in the default project, no user).
        owner: the owner text to keep when there is no author (the request's, or a stored row's).
    """
    if author is None:
        return {"owner": owner}
    columns: dict[str, Any] = {"owner": author.name, "owner_id": author.user_id}
    if author.project_id is not None:
        columns["project_id"] = author.project_id
    return columns


def _rowcount(result: Any) -> int:
    return cast(CursorResult[Any], result).rowcount


def _status_of(session: Session, experiment_id: int) -> Status:
    status = session.scalar(select(Experiment.status).where(Experiment.id == experiment_id))
    if status is None:
        raise NotFound("experiment", experiment_id)
    return Status(status)


def create_experiment(
    session: Session,
    queue: Queue,
    request: ExperimentCreate,
    limits: CostLimits | None = None,
    author: Author | None = None,
    *,
    data_dirs: Sequence[Path] | None = None,
    rerun_of: int | None = None,
) -> ExperimentCreated:
    """Save a queued experiment, commit, then hand its id to the workers.

    Args:
        session: an open session; it is committed here (before enqueueing).
        queue: where the id goes once the row is committed.
        request: the validated spec and its owner, tags and notes.
        limits: the most the spec may cost. Default None: no limit.
        author: its owner and project. Default None: ``request.owner`` in the default project.
        data_dirs: the server's data directories; an MNIST or Fashion-MNIST spec is refused when its
            files are not there. Default None: not checked.
        rerun_of: the experiment this one reruns (its lineage). Default None.

    Returns:
        The new experiment's id and status (``queued``).

    Raises:
        InvalidInput: the spec is over a limit (``field`` is ``spec.model`` or ``spec.training``, the
            message names the limit and the spec's value), or its image dataset's files are missing
            (``spec.dataset.name``); nothing is saved.
        QueueUnavailable: the queue refused the id; the experiment is kept, marked ``failed`` with the
            queue's error.
    """
    spec = request.spec
    exceeded = over_limits(spec, limits) if limits is not None else []
    if exceeded:
        field, message = exceeded[0]
        raise InvalidInput(("body", "spec", *field), message)
    if data_dirs is not None:
        catalog.require_dataset_files(spec, data_dirs, ("body", *DATASET_NAME_FIELD))
    cost = model_cost(spec.model)
    row = Experiment(
        name=spec.name,
        **placement(author, request.owner),
        tags=list(request.tags),
        notes=request.notes,
        spec=spec.model_dump(mode="json"),
        seed=spec.seed,
        status=Status.queued.value,
        initial_params=cost.params,
        initial_flops=cost.flops,
        rerun_of=rerun_of,
    )
    session.add(row)
    session.commit()
    experiment_id = row.id

    def mark_failed(message: str) -> None:
        session.execute(
            update(Experiment)
            .where(Experiment.id == experiment_id, Experiment.status == Status.queued.value)
            .values(status=Status.failed.value, error=message[: runs.MAX_ERROR_CHARS], finished_at=utcnow())
        )
        session.commit()

    dispatch_saved(lambda: queue.enqueue(experiment_id), mark_failed, f"experiment {experiment_id}")
    return ExperimentCreated(id=experiment_id, status=Status.queued)


def rerun_experiment(
    session: Session,
    queue: Queue,
    experiment_id: int,
    limits: CostLimits | None = None,
    author: Author | None = None,
    *,
    data_dirs: Sequence[Path] | None = None,
) -> ExperimentCreated:
    """Create and enqueue a new experiment with the same spec, tags, notes and project; its
    ``rerun_of`` names the source.

    Args:
        session: an open session; it is committed here.
        queue: where the new id goes.
        experiment_id: the experiment whose spec runs again.
        limits: the most the spec may cost. Default None: no limit.
        author: who reruns it (the new experiment's owner). Default None: the same owner.
        data_dirs: as for :func:`create_experiment`. Default None: not checked.

    Raises:
        NotFound: no such experiment.
        Conflict: the stored spec is no longer valid for this version of prunelab, or is over one of
            the server's limits (the message names the limit and the spec's value).
        InvalidInput: the spec's image dataset files are missing on this server (``spec.dataset.name``).
        QueueUnavailable: as for :func:`create_experiment`.
    """
    source = session.get(Experiment, experiment_id)
    if source is None:
        raise NotFound("experiment", experiment_id)
    spec_paths.require_inside_data_dirs(source.spec)
    try:
        spec = ExperimentSpec.model_validate(source.spec)
    except pydantic.ValidationError as exc:
        raise Conflict(
            f"experiment {experiment_id}'s spec is not valid for this version of prunelab "
            f"({exc.error_count()} errors); submit a corrected spec instead"
        ) from None
    exceeded = over_limits(spec, limits) if limits is not None else []
    if exceeded:
        raise Conflict(f"experiment {experiment_id}'s spec is over this server's limits: {exceeded[0][1]}")
    if data_dirs is not None:
        catalog.require_dataset_files(spec, data_dirs, DATASET_NAME_FIELD)
    request = ExperimentCreate.model_construct(
        spec=spec, owner=source.owner, tags=list(source.tags), notes=source.notes
    )
    if author is not None and author.project_id is None:
        author = Author(author.name, author.user_id, source.project_id)
    return create_experiment(session, queue, request, author=author, rerun_of=experiment_id)


def edit_experiment(
    session: Session, experiment_id: int, edit: ExperimentEdit, editor: str = "anonymous"
) -> ExperimentDetail:
    """Replace an experiment's tags and/or notes, in any state, and record who edited them when.

    One conditional UPDATE: a worker writing its progress at the same moment never touches these
    columns, so neither overwrites the other.

    Args:
        session: an open session; it is committed here.
        experiment_id: the experiment.
        edit: the new tags and/or notes (a field left out stays as it is).
        editor: who edits (the caller's name), stored in ``edited_by``. Default "anonymous".

    Returns:
        The experiment after the edit.

    Raises:
        NotFound: no such experiment.
    """
    values: dict[str, Any] = {"edited_at": utcnow(), "edited_by": editor[:100]}
    if edit.tags is not None:
        values["tags"] = list(edit.tags)
    if edit.notes is not None:
        values["notes"] = edit.notes
    result = session.execute(
        update(Experiment)
        .where(Experiment.id == experiment_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if _rowcount(result) == 0:
        raise NotFound("experiment", experiment_id)
    session.commit()
    return get_experiment(session, experiment_id)


def cancel_experiment(session: Session, experiment_id: int) -> ExperimentSummary:
    """Cancel a queued experiment at once, or ask a running one's worker to stop after the epoch.

    Args:
        session: an open session; it is committed here.
        experiment_id: the experiment.

    Returns:
        The experiment's summary after the change: ``cancelled``, or ``running`` with
        ``cancel_requested`` set (asking twice is harmless).

    Raises:
        NotFound: no such experiment.
        Conflict: the experiment has already finished.
    """
    if not runs.request_cancel(session, Experiment, experiment_id, stop_reason="cancelled"):
        status = _status_of(session, experiment_id)
        raise Conflict(f"experiment {experiment_id} has already finished ({status}); nothing to cancel")
    session.commit()
    return get_summary(session, experiment_id)


def delete_experiment(session: Session, experiment_id: int) -> None:
    """Delete an experiment that is not running, with its cycles, epochs, statistics and artifacts.

    The first statement is a conditional no-op update that takes the experiment's row lock (SQLite: the
    database write lock), so a worker's claim waits for this transaction and then finds nothing.

    Args:
        session: an open session; it is committed here.
        experiment_id: the experiment.

    Raises:
        NotFound: no such experiment.
        Conflict: the experiment is running (cancel it first).
    """
    locked = session.execute(
        update(Experiment)
        .where(Experiment.id == experiment_id, Experiment.status != Status.running.value)
        .values(cancel_requested=Experiment.cancel_requested)
    )
    if _rowcount(locked) == 0:
        status = _status_of(session, experiment_id)
        raise Conflict(f"experiment {experiment_id} is {status}; cancel it first")
    cycle_ids = select(Cycle.id).where(Cycle.experiment_id == experiment_id).scalar_subquery()
    for statement in (
        delete(LayerStatsRow).where(LayerStatsRow.cycle_id.in_(cycle_ids)),
        delete(TFLiteBenchmark).where(TFLiteBenchmark.experiment_id == experiment_id),
        delete(Artifact).where(Artifact.experiment_id == experiment_id),
        delete(EpochRow).where(EpochRow.experiment_id == experiment_id),
        delete(Cycle).where(Cycle.experiment_id == experiment_id),
        delete(Experiment).where(Experiment.id == experiment_id),
    ):
        session.execute(statement.execution_options(synchronize_session=False))
    session.commit()
