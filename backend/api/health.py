"""Health: 200 when the database, its schema and the broker are all fine, else 503."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from backend.api.deps import ContextDep
from backend.schemas import Health
from backend.service.health import check_health

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "a check failed"}},
    summary="Service health",
)
def health(context: ContextDep) -> JSONResponse:
    """Per-check detail: ``database`` (answers), ``migration`` (at head), ``broker`` (the queue pings)."""
    report = check_health(context.engine, context.queue)
    return JSONResponse(report.model_dump(mode="json"), status_code=200 if report.status == "ok" else 503)
