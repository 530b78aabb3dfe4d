"""What a spec may use and what it costs: presets, recipes, datasets on this server, and spec previews.

Pure apart from :func:`datasets`, which looks at files (it never parses them), and :func:`recipes`,
which reads the example specs shipped in the package (``backend/recipes/``; ``examples/`` links there).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path

from backend.schemas import DatasetOut, LayerCostOut, ModelCostOut, PresetOut, RecipeOut, SpecPreview
from backend.schemas_graph import GroupOut
from backend.service.errors import InvalidInput
from prunespec import datapaths
from prunespec.costs import model_cost
from prunespec.groups import dependency_groups
from prunespec.layers import ModelSpec
from prunespec.presets import PRESET_DESCRIPTIONS, preset, preset_names
from prunespec.spec import ExperimentSpec, load_spec

#: The datasets a spec names without a file of its own, in the order a form should offer them.
BUILTIN_DATASETS = ("sum", "mnist", "fashion-mnist")


def model_cost_out(model: ModelSpec) -> ModelCostOut:
    """A model's per-layer parameters, FLOPs and output shapes with the totals.

    Args:
        model: a validated model spec.

    Returns:
        The costs as ``prunespec.costs.model_cost`` counts them, plus widths and prunable layer names.
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


#: The package folder holding the example specs (one copy: ``examples/`` is a link to it).
RECIPES_PACKAGE, RECIPES_FOLDER = "backend", "recipes"


def leading_comment(text: str) -> str:
    """The comment lines a YAML file starts with, without their ``#`` marks, joined by newlines.

    Args:
        text: the file's text.

    Returns:
        The comment (empty when the file starts with something else).
    """
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[1:].removeprefix(" ").rstrip())
    return "\n".join(lines).strip()


def first_sentence(text: str) -> str:
    """The first sentence of a comment (up to a full stop that does not end "et al."), on one line."""
    flat = " ".join(text.split())
    match = re.search(r"(?<!\bal)[.!?](\s|$)", flat)
    return flat if match is None else flat[: match.start() + 1]


@lru_cache(maxsize=1)
def recipes() -> tuple[RecipeOut, ...]:
    """Every example spec shipped with prunelab, by name, read and validated once per process.

    Returns:
        One recipe per ``*.yaml`` file: its name, the first line and the whole of its leading comment,
        and its spec as it would be stored.
    """
    folder = resources.files(RECIPES_PACKAGE) / RECIPES_FOLDER
    out = []
    for entry in sorted(folder.iterdir(), key=lambda one: one.name):
        if not entry.name.endswith(".yaml"):
            continue
        with resources.as_file(entry) as path:
            spec = load_spec(path)
            description = leading_comment(Path(path).read_text(encoding="utf-8"))
        out.append(
            RecipeOut(
                name=entry.name.removesuffix(".yaml"),
                summary=first_sentence(description),
                description=description,
                spec=spec.model_dump(mode="json"),
            )
        )
    return tuple(out)


def groups_out(model: ModelSpec) -> list[GroupOut]:
    """Every dependency group of a model, prunable and fixed, in model order.

    Args:
        model: a validated model spec.

    Raises:
        InvalidInput: on ``("body", "spec", "model")``: the groups cannot be traced (the message
            names the layer).
    """
    try:
        groups = dependency_groups(model)
    except ValueError as error:
        raise InvalidInput(("body", "spec", "model"), str(error)) from error
    return [GroupOut.of(group) for group in groups]


def preview(spec: ExperimentSpec) -> SpecPreview:
    """A validated spec as it would be stored, its model's cost and dependency groups; nothing is created.

    Args:
        spec: a spec pydantic has already validated (presets expanded).

    Raises:
        InvalidInput: the model's groups cannot be traced.
    """
    return SpecPreview(
        spec=spec.model_dump(mode="json"), cost=model_cost_out(spec.model), groups=groups_out(spec.model)
    )


def missing_dataset_message(name: str) -> str:
    """What a 422 says when this server lacks an image dataset's files (it names no directory).

    Args:
        name: ``mnist`` or ``fashion-mnist``.
    """
    folder = "" if name == "mnist" else f" (in a folder named {name}/)"
    files = "mnist.npz or the four IDX files" if name == "mnist" else "the four IDX files"
    return (
        f"this server has no {name} files: put {files}{folder} into the server's data directory "
        f"({datapaths.ENV_DATA_DIR}), or choose another dataset"
    )


def require_dataset_files(spec: ExperimentSpec, directories: Sequence[Path], field: Sequence[str]) -> None:
    """Refuse a spec whose image dataset this server cannot load, as its worker would later.

    "This server has the files" means what ``/api/datasets`` reports (:func:`datasets`). ``sum`` is
    generated and ``npz`` names its own file (checked when the worker opens it).

    Args:
        spec: a validated spec.
        directories: the server's data directories (:func:`data_dirs`), in search order.
        field: where the spec's dataset name is in the request, e.g. ``("body", "spec", "dataset", "name")``.

    Raises:
        InvalidInput: on ``field``: the dataset is MNIST or Fashion-MNIST and its files are not found.
    """
    name = spec.dataset.name
    if name not in BUILTIN_DATASETS or name == "sum":
        return
    available = {dataset.name for dataset in datasets(directories) if dataset.available}
    if name not in available:
        raise InvalidInput(field, missing_dataset_message(name))


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
