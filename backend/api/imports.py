"""Importing a local run: ``POST /api/experiments/import`` (``prunelab push RUN_DIR``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Response, status

from backend.api.deps import SessionDep
from backend.api.experiments import INVALID
from backend.auth.deps import AuditDep, Submitter, current_user
from backend.auth.errors import Forbidden
from backend.auth.projects import resolve_project
from backend.auth.roles import Role
from backend.schemas import ErrorBody, ExperimentCreated
from backend.schemas_exchange import ExperimentImport
from backend.service import commands, imports

router = APIRouter(prefix="/experiments", tags=["experiments"], dependencies=[Depends(current_user)])


@router.post(
    "/import",
    status_code=status.HTTP_201_CREATED,
    responses={**INVALID, 413: {"model": ErrorBody, "description": "the body is over the server's cap"}},
    summary="Add a local run to the history",
)
def import_run(
    request: Annotated[ExperimentImport, Body()],
    session: SessionDep,
    user: Submitter,
    audit: AuditDep,
    response: Response,
) -> ExperimentCreated:
    """Store a ``prunelab run`` result (its results.json, and optionally a small final.keras as base64) as a
    succeeded experiment with its cycles and epochs, marked ``source: local-run`` and tagged ``local-run``.
    Nothing is queued: the run already happened. As with a new experiment, the owner is the caller and
    it goes to the caller's default project, where they must be a member (not a viewer)."""
    project_id = resolve_project(session, user, None)
    role = user.role_in(project_id)
    if role is None or role is Role.viewer:
        raise Forbidden("viewers cannot add experiments to this project")
    created = imports.import_run(session, request, commands.Author(user.name, user.user_id, project_id))
    audit("experiment.import", f"experiment {created.id}", project=project_id)
    response.headers["Location"] = created.url
    return created
