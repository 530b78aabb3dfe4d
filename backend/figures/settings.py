"""Compared experiments' settings: every spec setting side by side (differences marked), and the
parallel-coordinates view of the settings that differ against final metric, FLOPs and parameters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from backend.figures.common import Figure, colour, empty_figure, escape, figure, layout, number
from backend.figures.compare import check_count
from backend.figures.inputs import ExperimentSeries
from backend.figures.tables import Cell
from prunespec.presets import preset, preset_names

PARCOORDS_TITLE = "Settings vs final metric, FLOPs and parameters"


@dataclass(frozen=True)
class SettingRow:
    """One setting of the compared specs.

    Attributes:
        setting: its dotted path in the spec, e.g. ``training.learning_rate``.
        values: one cell per experiment, in column order (None: the spec does not have it).
        differs: whether the experiments disagree on it.
    """

    setting: str
    values: tuple[Cell, ...]
    differs: bool

    def as_dict(self) -> dict[str, Any]:
        """The row as JSON-ready data."""
        return {**asdict(self), "values": list(self.values)}


def model_label(model: object) -> str:
    """A spec's model in one cell: the preset it names or equals, else "custom (N layers)".

    Args:
        model: the stored spec's ``model`` (a preset name, ``{"preset": name}`` or the expanded graph).
    """
    if isinstance(model, str):
        return model
    if isinstance(model, Mapping) and isinstance(model.get("preset"), str) and len(model) == 1:
        return str(model["preset"])
    for name in preset_names():
        if model == preset(name).model_dump(mode="json"):
            return name
    layers = model.get("layers") if isinstance(model, Mapping) else None
    return f"custom ({len(layers) if isinstance(layers, list) else '?'} layers)"


def _cell(value: object) -> Cell:
    if value is None or isinstance(value, int | float | str):
        return value
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value)


def flatten(spec: Mapping[str, Any]) -> dict[str, Cell]:
    """A stored spec as dotted setting paths and cells (the model as one cell, lists joined by ", ").

    Args:
        spec: the spec as stored (plain JSON).

    Returns:
        e.g. ``{"name": "x", "model": "sum-mlp", "training.epochs": 3, "benchmark.formats": "float32"}``.
    """
    out: dict[str, Cell] = {}

    def walk(node: Mapping[str, Any], prefix: str) -> None:
        for key, value in node.items():
            path = f"{prefix}{key}"
            if path == "model":
                out[path] = model_label(value)
            elif isinstance(value, Mapping):
                walk(value, f"{path}.")
            else:
                out[path] = _cell(value)

    walk(spec, "")
    return out


def settings_table(specs: Sequence[Mapping[str, Any]]) -> list[SettingRow]:
    """Every setting of the specs side by side, in order of first appearance.

    Args:
        specs: the compared experiments' stored specs, in column order.

    Returns:
        one row per setting; ``differs`` is true where two experiments have different cells (a
        setting one spec lacks counts as different).
    """
    flat = [flatten(spec) for spec in specs]
    paths: dict[str, None] = {}
    for one in flat:
        paths.update(dict.fromkeys(one))
    rows = []
    for path in paths:
        values = tuple(one.get(path) for one in flat)
        rows.append(SettingRow(path, values, len({repr(value) for value in values}) > 1))
    return rows


def _dimension(label: str, values: Sequence[Cell]) -> dict[str, Any] | None:
    """One parallel axis: numbers as they are, text as evenly spaced categories; None if unusable."""
    numbers = [number(value) if not isinstance(value, bool | str) else None for value in values]
    if all(value is not None for value in numbers):
        return {"label": escape(label), "values": numbers}
    texts = [str(value) if value is not None else "–" for value in values]
    categories = sorted(set(texts))
    if len(categories) > 12:
        return None
    return {
        "label": escape(label),
        "values": [categories.index(text) for text in texts],
        "tickvals": list(range(len(categories))),
        "ticktext": [escape(text) for text in categories],
    }


def parcoords_figure(
    experiments: Sequence[ExperimentSeries],
    specs: Sequence[Mapping[str, Any]],
    *,
    uirevision: str | int = "compare-parcoords",
) -> Figure:
    """Parallel coordinates: one line per experiment through the settings that differ, then its final
    validation metric, FLOPs and parameters.

    Args:
        experiments: the compared experiments (at most :data:`MAX_COMPARED`).
        specs: their stored specs, in the same order.
        uirevision: kept across updates. Default "compare-parcoords".

    Returns:
        one ``parcoords`` trace, its lines coloured by experiment position (the compare palette); the
        setting ``name`` is left out (every experiment has its own). Empty with fewer than two
        experiments that have a final cycle.

    Raises:
        ValueError: more than :data:`MAX_COMPARED` experiments, or not one spec per experiment.
    """
    check_count(experiments)
    if len(specs) != len(experiments):
        raise ValueError(f"{len(specs)} specs for {len(experiments)} experiments")
    finished = [i for i, experiment in enumerate(experiments) if experiment.final is not None]
    if len(finished) < 2:
        return empty_figure(PARCOORDS_TITLE, uirevision, "Needs two experiments with a finished cycle")
    chosen = [experiments[i] for i in finished]
    rows = settings_table([specs[i] for i in finished])
    dimensions = [
        dimension
        for row in rows
        if row.differs and row.setting != "name"
        for dimension in [_dimension(row.setting, row.values)]
        if dimension is not None
    ]
    finals = [experiment.final for experiment in chosen]
    metric_names = sorted({experiment.metric_name or "metric" for experiment in chosen})
    outcomes: list[tuple[str, list[Cell]]] = [
        (
            f"final validation {' / '.join(metric_names)}",
            [None if final is None else number(final.val_metric) for final in finals],
        ),
        ("final FLOPs", [None if final is None else final.flops for final in finals]),
        ("final parameters", [None if final is None else final.params for final in finals]),
    ]
    for label, values in outcomes:
        dimension = _dimension(label, values)
        if dimension is not None:
            dimensions.append(dimension)
    count = len(experiments)
    colourscale = [[position / max(count - 1, 1), colour(position)] for position in range(count)]
    trace = {
        "type": "parcoords",
        "line": {"color": finished, "colorscale": colourscale, "cmin": 0, "cmax": max(count - 1, 1)},
        "dimensions": dimensions,
        "customdata": [escape(experiment.label) for experiment in chosen],
    }
    return figure([trace], layout(PARCOORDS_TITLE, uirevision, margin={"l": 60, "r": 60, "t": 70, "b": 30}))
