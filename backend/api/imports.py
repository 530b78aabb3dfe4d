"""Importing a local run: ``POST /api/experiments/import`` (``prunelab push RUN_DIR``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Response, status

from backend.api.deps import SessionDep
from backend.api.experiments import INVALID
from backend.schemas import ErrorBody, ExperimentCreated, ExperimentImport
from backend.service import imports

router = APIRouter(prefix="/experiments", tags=["experiments"])


@router.post(
    "/import",
    status_code=status.HTTP_201_CREATED,
    responses={**INVALID, 413: {"model": ErrorBody, "description": "the body is over the server's cap"}},
    summary="Add a local run to the history",
)
def import_run(
    request: Annotated[ExperimentImport, Body()], session: SessionDep, response: Response
) -> ExperimentCreated:
    """Store a ``prunelab run`` result (its results.json, and optionally a small final.keras as base64) as a
    succeeded experiment with its cycles and epochs, marked ``source: local-run`` and tagged ``local-run``.
    Nothing is queued: the run already happened."""
    created = imports.import_run(session, request)
    response.headers["Location"] = created.url
    return created
