"""One experiment's figures as Plotly JSON, the figure index, the architecture diff and the TFLite table.

Figures are built by ``backend.service.figures`` from the rows they need; the routes only parse.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse

from backend.api.deps import SessionDep
from backend.auth.deps import VisibleExperimentId, current_user
from backend.schemas import ErrorBody, ValidationErrorBody
from backend.service import architecture as architecture_diff
from backend.service import figures
from backend.service.architecture import ArchitectureDiffOut
from backend.service.figures import FigureIndex, FigureName, FigureOptions

router = APIRouter(prefix="/experiments", tags=["figures"], dependencies=[Depends(current_user)])

Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {404: {"model": ErrorBody, "description": "no such experiment, layer or cycle"}}
INVALID: Responses = {422: {"model": ValidationErrorBody, "description": "a parameter is invalid"}}
FIGURE: Responses = {200: {"content": {"application/json": {}}, "description": "a Plotly figure"}}
CycleIndex = Annotated[int, Query(ge=0, le=100_000)]
LayerName = Annotated[str, Query(min_length=1, max_length=64, description="a layer with statistics")]


@router.get("/{experiment_id}/figures", responses=NOT_FOUND, summary="What can be drawn")
def figure_index(experiment_id: VisibleExperimentId, session: SessionDep) -> FigureIndex:
    """The figure names, the finished cycles, the layers with activation statistics and the criterion."""
    return figures.figure_index(session, experiment_id)


@router.get(
    "/{experiment_id}/figures/{name}",
    response_class=JSONResponse,
    responses={**FIGURE, **NOT_FOUND, **INVALID},
    summary="One figure (Plotly JSON)",
)
def experiment_figure(
    experiment_id: VisibleExperimentId,
    name: Annotated[FigureName, Path(description="which figure")],
    session: SessionDep,
    stacked: Annotated[bool, Query(description="widths: stack the layers' bars")] = False,
    stage: Annotated[
        figures.Stage, Query(description="widths: units kept by pruning, or units trained")
    ] = "after",
    normalise: Annotated[bool, Query(description="costs: % of the first cycle")] = False,
    log: Annotated[
        bool | None,
        Query(description="training: log loss (default when it spans decades); activations: log colours"),
    ] = None,
    layer: LayerName | None = None,
    cycle: Annotated[int | None, Query(ge=0, le=100_000, description="criterion: the cycle")] = None,
) -> JSONResponse:
    """``widths``, ``costs``, ``metric-flops``, ``training``, ``activations`` (``layer``), ``criterion``
    (``layer``, ``cycle``; default the latest), ``tflite`` or ``speedup``, ready for ``Plotly.react``.
    Options that do not concern the figure are ignored; ``uirevision`` stays the same across live updates."""
    options = FigureOptions(
        stacked=stacked, stage=stage, normalise=normalise, log=log, layer=layer, cycle=cycle
    )
    return JSONResponse(figures.experiment_figure(session, experiment_id, name, options))


@router.get("/{experiment_id}/architecture", responses={**NOT_FOUND, **INVALID}, summary="Architecture diff")
def architecture(
    experiment_id: VisibleExperimentId,
    session: SessionDep,
    before: CycleIndex,
    after: Annotated[int | None, Query(ge=0, le=100_000, description="default: before's own pruning")] = None,
) -> ArchitectureDiffOut:
    """The model of cycle ``before`` against cycle ``after``, layer by layer: inputs, groups, widths,
    parameters and FLOPs before → after; the dependency groups' widths; and the model drawn as a graph
    (Plotly JSON). Without ``after``: what cycle ``before``'s pruning kept."""
    return architecture_diff.architecture(session, experiment_id, before, after)
