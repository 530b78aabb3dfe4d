"""Experiments side by side: the comparison, its figures (Plotly JSON) and its CSV/JSON export."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import JSONResponse

from backend.api.artifacts import content_disposition
from backend.api.deps import ContextDep, SessionDep
from backend.auth.deps import CurrentUser, current_user, require_visible
from backend.db import session_scope
from backend.figures import MAX_COMPARED
from backend.schemas import ErrorBody, ValidationErrorBody
from backend.service import compare
from backend.service.compare import CompareFigureName, CompareSettingsOut, Comparison, ExportFormat

router = APIRouter(tags=["compare"], dependencies=[Depends(current_user)])

Responses = dict[int | str, dict[str, Any]]
ERRORS: Responses = {
    404: {"model": ErrorBody, "description": "an experiment does not exist"},
    422: {"model": ValidationErrorBody, "description": "`ids` is not a list of experiment ids"},
}
IDS_HELP = f"comma-separated experiment ids, at most {MAX_COMPARED}, e.g. 1,2,3"


def compared_ids(
    ids: Annotated[str, Query(max_length=2000, description=IDS_HELP)], user: CurrentUser, context: ContextDep
) -> list[int]:
    """The ``ids`` query parameter as at most ``MAX_COMPARED`` distinct ids, each one the caller may see
    (404 otherwise, as for an id that does not exist)."""
    parsed = compare.parse_ids(ids)
    with session_scope(context.session_factory) as session:
        require_visible(session, user, parsed)
    return parsed


ComparedIds = Annotated[list[int], Depends(compared_ids)]


@router.get("/compare", responses=ERRORS, summary="Compare experiments")
def comparison(ids: ComparedIds, session: SessionDep) -> Comparison:
    """The compared experiments' summaries, the table of their final architectures and headline
    numbers, and every cycle's headline numbers (for plots of your own)."""
    return compare.compare(session, ids)


@router.get("/compare/settings", responses=ERRORS, summary="Compare experiments' settings")
def comparison_settings(ids: ComparedIds, session: SessionDep) -> CompareSettingsOut:
    """Every spec setting of the compared experiments side by side; ``differs`` marks the settings
    they disagree on."""
    return compare.compare_settings(session, ids)


@router.get(
    "/compare/figures/{name}",
    response_class=JSONResponse,
    responses={200: {"content": {"application/json": {}}, "description": "a Plotly figure"}, **ERRORS},
    summary="One compare figure (Plotly JSON)",
)
def compare_figure(
    name: Annotated[CompareFigureName, Path(description="which figure")],
    ids: ComparedIds,
    session: SessionDep,
    final_only: Annotated[bool, Query(description="Pareto: one point per experiment")] = False,
    log: Annotated[bool, Query(description="Pareto: log cost axis")] = False,
    metric: Annotated[
        Literal["accuracy", "rmse"] | None,
        Query(description="Pareto: the metric to compare on; default the first experiment's"),
    ] = None,
) -> JSONResponse:
    """``widths`` (units kept per layer vs cycle), ``pareto-flops`` and ``pareto-latency`` (validation
    metric vs cost with the Pareto front), ``parcoords`` (settings that differ vs final metric, FLOPs
    and parameters) or ``loss`` (loss per epoch, overlaid)."""
    figure = compare.compare_figure(session, ids, name, final_only=final_only, log=log, metric=metric)
    return JSONResponse(figure)


@router.get(
    "/compare/export",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}, "application/json": {}}}, **ERRORS},
    summary="Download a comparison",
)
def export_comparison(
    ids: ComparedIds,
    session: SessionDep,
    file_format: Annotated[
        ExportFormat, Query(alias="format", description="csv: the table; json: everything")
    ] = "csv",
) -> Response:
    """The compare table as CSV (spreadsheet formulas defused) or the whole comparison as JSON."""
    text, media_type, filename = compare.export(session, ids, file_format)
    return Response(
        content=text,
        media_type=media_type,
        headers={"Content-Disposition": content_disposition(filename), "X-Content-Type-Options": "nosniff"},
    )
