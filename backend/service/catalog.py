"""What a spec may use and what it costs: presets, datasets on this server, and spec previews.

Pure apart from :func:`datasets`, which looks at files (it never parses them).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from backend import datapaths
from backend.costs import model_cost
from backend.layers import ModelSpec
from backend.presets import PRESET_DESCRIPTIONS, preset, preset_names
from backend.schemas import DatasetOut, LayerCostOut, ModelCostOut, PresetOut, SpecPreview
from backend.settings import Settings
from backend.spec import ExperimentSpec

#: The datasets a spec names without a file of its own, in the order a form should offer them.
BUILTIN_DATASETS = ("sum", "mnist", "fashion-mnist")


def model_cost_out(model: ModelSpec) -> ModelCostOut:
    """A model's per-layer parameters, FLOPs and output shapes with the totals.

    Args:
        model: a validated model spec.

    Returns:
        The costs as ``backend.costs.model_cost`` counts them, plus widths and prunable layer names.
    """
    cost = model_cost(model)
    layers = [
        LayerCostOut(
            name=layer.name, type=layer.type, params=layer.params, flops=layer.flops, output_shape=list(shape)
        )
        for layer, shape in zip(cost.layers, model.shapes, strict=True)
    ]
    return ModelCostOut(
        params=cost.params,
        flops=cost.flops,
        layers=layers,
        widths=model.widths(),
        prunable_layers=model.prunable_names(),
    )


@lru_cache(maxsize=1)
def presets() -> tuple[PresetOut, ...]:
    """Every preset model with its description and cost (computed once per process)."""
    out = []
    for name in preset_names():
        model = preset(name)
        out.append(
            PresetOut(
                name=name,
                description=PRESET_DESCRIPTIONS.get(name, ""),
                model=model.model_dump(mode="json"),
                cost=model_cost_out(model),
            )
        )
    return tuple(out)


def preview(spec: ExperimentSpec) -> SpecPreview:
    """A validated spec as it would be stored, and its model's cost; nothing is created.

    Args:
        spec: a spec pydantic has already validated (presets expanded).
    """
    return SpecPreview(spec=spec.model_dump(mode="json"), cost=model_cost_out(spec.model))


def data_dirs(settings: Settings) -> list[Path]:
    """Where this server looks for dataset files: the data directory, then the engine's defaults."""
    return datapaths.data_dirs(settings.data_dir)


def datasets(directories: Sequence[Path]) -> list[DatasetOut]:
    """The built-in datasets and, for those whose files this server finds, where they are.

    ``npz`` is not listed: a spec names its own file.

    Args:
        directories: searched in order, as the engine searches them.
    """
    from worker.engine.data import available_datasets  # NumPy only; never TensorFlow

    found = available_datasets(list(directories))
    return [
        DatasetOut(name=name, available=name in found, source=found.get(name)) for name in BUILTIN_DATASETS
    ]
