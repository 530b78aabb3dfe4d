"""The REST API: routers only. Each route parses, calls ``backend.service``, and returns a schema;
``backend.api.errors`` is the one place that turns failures into HTTP answers."""

from __future__ import annotations

from fastapi import APIRouter

from backend.api import artifacts, catalog, events, experiments, exports, health, imports
from backend.schemas import API_PREFIX


def api_router() -> APIRouter:
    """Every route under ``/api``."""
    router = APIRouter(prefix=API_PREFIX)
    for module in (imports, experiments, exports, events, artifacts, catalog, health):
        router.include_router(module.router)
    return router
