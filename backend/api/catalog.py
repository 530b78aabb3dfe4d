"""What a spec may use and what it costs: presets, recipes (example specs), datasets, spec preview."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends

from backend.api.deps import ContextDep
from backend.auth.deps import current_user
from backend.limits import CostLimits, limit_checks
from backend.schemas import (
    DatasetOut,
    PresetOut,
    RecipeOut,
    SpecPreview,
    SpecPreviewRequest,
    ValidationErrorBody,
)
from backend.service import catalog

router = APIRouter(tags=["catalog"], dependencies=[Depends(current_user)])


@router.get("/presets", summary="Preset models")
def list_presets() -> list[PresetOut]:
    """Every preset model: its layers, parameters and FLOPs per layer and in total."""
    return list(catalog.presets())


@router.get("/recipes", summary="Example specs")
def list_recipes() -> list[RecipeOut]:
    """The example specs shipped with prunelab (``examples/*.yaml``): name, the file's leading comment,
    and the spec as it would be stored, ready to submit or to edit in the New form."""
    return list(catalog.recipes())


@router.get("/datasets", summary="Datasets on this server")
def list_datasets(context: ContextDep) -> list[DatasetOut]:
    """The built-in datasets and whether this server finds their files (``sum`` is generated)."""
    return catalog.datasets(context.settings.data_dirs())


@router.post(
    "/specs/preview",
    responses={422: {"model": ValidationErrorBody, "description": "a field is invalid; `loc` names it"}},
    summary="Validate and cost a spec",
)
def preview_spec(request: Annotated[SpecPreviewRequest, Body()], context: ContextDep) -> SpecPreview:
    """Validate a spec and return it as it would be stored, with its model's parameters and FLOPs per
    layer and its estimates against this server's limits. Nothing is created."""
    limits = limit_checks(request.spec, CostLimits.from_settings(context.settings))
    return catalog.preview(request.spec).model_copy(update={"limits": limits})
