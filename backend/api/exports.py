"""Experiment export: ``GET /api/experiments/{id}/export?format=json|csv&what=cycles|epochs``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from backend.api.artifacts import content_disposition
from backend.api.deps import SessionDep
from backend.auth.deps import VisibleExperimentId, current_user
from backend.schemas import ErrorBody, ValidationErrorBody
from backend.schemas_exchange import ExportQuery
from backend.service import exports

router = APIRouter(prefix="/experiments", tags=["experiments"], dependencies=[Depends(current_user)])


@router.get(
    "/{experiment_id}/export",
    response_class=Response,
    responses={
        200: {
            "content": {
                "application/json": {"schema": {"type": "object", "title": "ExperimentExport"}},
                "text/csv": {"schema": {"type": "string"}},
            },
            "description": "the download, named in Content-Disposition",
        },
        404: {"model": ErrorBody, "description": "no such experiment"},
        422: {"model": ValidationErrorBody, "description": "an unknown format or what"},
    },
    summary="Download cycles and epochs",
)
def export_experiment(
    experiment_id: VisibleExperimentId, query: Annotated[ExportQuery, Query()], session: SessionDep
) -> Response:
    """JSON: the spec, summary, every cycle and epoch in one document. CSV: one row per cycle (widths per
    layer as columns, params, FLOPs, losses, metrics, kept or rejected, the final one marked) or, with
    ``what=epochs``, one row per training epoch."""
    download = exports.export_experiment(session, experiment_id, query)
    return Response(
        content=download.content,
        media_type=download.media_type,
        headers={
            "Content-Disposition": content_disposition(download.filename),
            "X-Content-Type-Options": "nosniff",
        },
    )
