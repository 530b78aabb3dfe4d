"""Experiment routes: create, list, read (cycles, epochs, layer statistics, artifacts), edit tags and
notes, cancel, rerun, delete. Each route parses, checks the caller (``backend.auth.deps``), calls the
service, and returns its schema."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Response, status

from backend.api.deps import ContextDep, ExperimentId, QueueDep, SessionDep
from backend.auth.deps import (
    AuditDep,
    CurrentUser,
    ManagedExperimentId,
    Submitter,
    VisibleExperimentId,
    current_user,
    visible_experiment,
)
from backend.auth.errors import Forbidden
from backend.auth.projects import resolve_project
from backend.auth.roles import Role
from backend.limits import CostLimits
from backend.schemas import (
    ArtifactOut,
    CycleDetail,
    CycleLayers,
    EpochOut,
    ErrorBody,
    ExperimentCreate,
    ExperimentCreated,
    ExperimentDetail,
    ExperimentEdit,
    ExperimentPage,
    ExperimentQuery,
    ExperimentSummary,
    ValidationErrorBody,
)
from backend.service import commands, queries

router = APIRouter(prefix="/experiments", tags=["experiments"], dependencies=[Depends(current_user)])

Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {404: {"model": ErrorBody, "description": "no such experiment"}}
INVALID: Responses = {
    422: {"model": ValidationErrorBody, "description": "a field is invalid; `loc` names it"}
}
CONFLICT: Responses = {409: {"model": ErrorBody, "description": "the experiment's state forbids it"}}
FORBIDDEN: Responses = {403: {"model": ErrorBody, "description": "only its owner or an admin may"}}
LIMITED: Responses = {429: {"model": ErrorBody, "description": "too many submissions this minute"}}
QUEUE_DOWN: Responses = {
    503: {"model": ErrorBody, "description": "saved, but the queue refused it (marked failed)"}
}


def _accepted(response: Response, created: ExperimentCreated) -> ExperimentCreated:
    response.headers["Location"] = created.url
    return created


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    responses={**INVALID, **QUEUE_DOWN, **LIMITED},
    summary="Create an experiment and queue it",
)
def create_experiment(
    request: Annotated[ExperimentCreate, Body()],
    session: SessionDep,
    queue: QueueDep,
    context: ContextDep,
    user: Submitter,
    audit: AuditDep,
    response: Response,
) -> ExperimentCreated:
    """Validate the spec, save the experiment (``queued``), then hand its id to the workers.

    ``spec.model`` may be a preset name. Unknown fields anywhere are an error, and so is a spec over
    the server's limits on parameters, FLOPs per example or training examples × epochs. The owner is
    the caller (an ``owner`` in the body is ignored); ``project`` (name or id) defaults to the
    caller's default project, where they must be a member (not a viewer).
    """
    project_id = resolve_project(session, user, request.project)
    role = user.role_in(project_id)
    if role is None or role is Role.viewer:
        raise Forbidden("viewers cannot create experiments in this project")
    limits = CostLimits.from_settings(context.settings)
    data_dirs = context.settings.data_dirs()
    author = commands.Author(user.name, user.user_id, project_id)
    created = commands.create_experiment(session, queue, request, limits, author, data_dirs=data_dirs)
    audit("experiment.create", f"experiment {created.id}", project=project_id)
    return _accepted(response, created)


@router.get("", responses=INVALID, summary="List experiments")
def list_experiments(
    query: Annotated[ExperimentQuery, Query()], session: SessionDep, user: CurrentUser
) -> ExperimentPage:
    """One page of the experiments the caller may see (summary columns only) and the number that
    match the filters."""
    return queries.list_experiments(session, query, projects=user.projects)


@router.get("/{experiment_id}", responses=NOT_FOUND, summary="One experiment")
def get_experiment(experiment_id: VisibleExperimentId, session: SessionDep) -> ExperimentDetail:
    """The spec, state, live progress and every finished cycle's headline numbers."""
    return queries.get_experiment(session, experiment_id)


@router.get("/{experiment_id}/cycles", responses=NOT_FOUND, summary="Cycles in full")
def list_cycles(experiment_id: VisibleExperimentId, session: SessionDep) -> list[CycleDetail]:
    """Every finished cycle: model, per-layer costs, removed/folded/merged units, timings."""
    return queries.list_cycles(session, experiment_id)


@router.get("/{experiment_id}/epochs", responses=NOT_FOUND, summary="Training epochs")
def list_epochs(
    experiment_id: VisibleExperimentId,
    session: SessionDep,
    cycle: Annotated[int | None, Query(ge=0, le=100_000, description="only this cycle's epochs")] = None,
) -> list[EpochOut]:
    """The training epochs recorded so far, by cycle then epoch."""
    return queries.list_epochs(session, experiment_id, cycle)


CycleIndex = Annotated[int, Path(ge=0, le=100_000, description="the cycle's index (0 is the first)")]


def _cycle_owner(
    experiment_id: ExperimentId, index: CycleIndex, user: CurrentUser, context: ContextDep
) -> int:
    """The experiment id when the caller sees it; a malformed ``index`` stays a 422 (this dependency is
    not called while one of its own parameters is invalid)."""
    return visible_experiment(experiment_id, user, context)


@router.get("/{experiment_id}/cycles/{index}/layers", responses=NOT_FOUND, summary="Layer statistics")
def cycle_layers(
    experiment_id: Annotated[int, Depends(_cycle_owner)],
    index: CycleIndex,
    session: SessionDep,
    unit_histograms: Annotated[bool, Query(description="also send every unit's histogram")] = False,
) -> CycleLayers:
    """Activation statistics of every measured layer in one cycle, per unit: active and zero counts,
    APoZ, mean, variance, extremes; the layer's histogram; optionally each unit's histogram."""
    return queries.cycle_layers(session, experiment_id, index, unit_histograms=unit_histograms)


@router.get("/{experiment_id}/artifacts", responses=NOT_FOUND, summary="Stored files")
def list_artifacts(experiment_id: VisibleExperimentId, session: SessionDep) -> list[ArtifactOut]:
    """The experiment's models and TFLite files (download each from its ``url``)."""
    return queries.list_artifacts(session, experiment_id)


@router.post("/{experiment_id}/cancel", responses={**NOT_FOUND, **CONFLICT}, summary="Cancel")
def cancel_experiment(
    experiment_id: ManagedExperimentId, session: SessionDep, audit: AuditDep
) -> ExperimentSummary:
    """A queued experiment is cancelled at once; a running one stops after its current epoch
    (``cancel_requested`` is set); a finished one is a conflict."""
    summary = commands.cancel_experiment(session, experiment_id)
    audit("experiment.cancel", f"experiment {experiment_id}")
    return summary


@router.post(
    "/{experiment_id}/rerun",
    status_code=status.HTTP_202_ACCEPTED,
    responses={**NOT_FOUND, **CONFLICT, **QUEUE_DOWN},
    summary="Run the same spec again",
)
def rerun_experiment(
    experiment_id: ManagedExperimentId,
    session: SessionDep,
    queue: QueueDep,
    context: ContextDep,
    user: Submitter,
    audit: AuditDep,
    response: Response,
) -> ExperimentCreated:
    """A new experiment with the same spec, owner, tags and notes, queued, its ``rerun_of`` naming this
    one (a conflict when the spec is over the server's limits; 422 when its dataset's files are missing)."""
    limits = CostLimits.from_settings(context.settings)
    data_dirs = context.settings.data_dirs()
    author = commands.Author(user.name, user.user_id, project_id=None)  # the project stays the source's
    created = commands.rerun_experiment(session, queue, experiment_id, limits, author, data_dirs=data_dirs)
    audit("experiment.rerun", f"experiment {experiment_id}", new=created.id)
    return _accepted(response, created)


@router.delete(
    "/{experiment_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**NOT_FOUND, **CONFLICT},
    summary="Delete an experiment",
)
def delete_experiment(experiment_id: ManagedExperimentId, session: SessionDep, audit: AuditDep) -> Response:
    """Delete the experiment with its cycles, statistics and artifacts; a running one must be
    cancelled first. Its owner or an admin may."""
    commands.delete_experiment(session, experiment_id)
    audit("experiment.delete", f"experiment {experiment_id}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.patch(
    "/{experiment_id}",
    responses={**NOT_FOUND, **INVALID, **FORBIDDEN},
    summary="Edit tags and notes",
)
def edit_experiment(
    experiment_id: ManagedExperimentId,
    edit: Annotated[ExperimentEdit, Body()],
    session: SessionDep,
    user: CurrentUser,
    audit: AuditDep,
) -> ExperimentDetail:
    """Replace the tags and/or notes (a field left out is kept); ``edited_by`` and ``edited_at`` record
    who and when. Its owner or an admin may."""
    detail = commands.edit_experiment(session, experiment_id, edit, user.name)
    audit("experiment.edit", f"experiment {experiment_id}", fields=sorted(edit.model_fields_set))
    return detail
