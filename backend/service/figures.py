"""One experiment's figures: read the rows a figure needs, map them to ``backend.figures`` inputs, build it.

Each loader reads only the columns its figure draws (never the model file, and the per-unit blobs of
one layer in one cycle only for the criterion figure). Figures come back as JSON-ready dicts; the
other answers (the figure index, the TFLite table) as schemas; the architecture diff is
``backend.service.architecture``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pydantic
from pydantic import BaseModel, ConfigDict, TypeAdapter
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.arrays import decode
from backend.figures import (
    CycleMarks,
    CycleRow,
    EpochPoint,
    Figure,
    LayerHistogram,
    TFLiteRow,
    UnitStats,
    activation_heatmap_figure,
    costs_figure,
    criterion_figure,
    metric_flops_figure,
    speedup_figure,
    tflite_figure,
    training_figure,
    widths_figure,
)
from backend.figures.criterion import CRITERIA
from backend.models import Cycle, EpochRow, Experiment, LayerStatsRow, TFLiteBenchmark
from backend.schemas_benchmarks import TFLiteBenchmarkOut
from backend.service.errors import NotFound
from prunespec.layers import ModelSpec
from prunespec.presets import preset
from prunespec.spec import Criterion

Stage = Literal["after", "before"]
FigureName = Literal[
    "widths", "costs", "metric-flops", "training", "activations", "criterion", "tflite", "speedup"
]
#: Every figure of one experiment, in the order the page shows them.
FIGURE_NAMES: tuple[FigureName, ...] = (
    "widths",
    "costs",
    "metric-flops",
    "training",
    "activations",
    "criterion",
    "tflite",
    "speedup",
)

#: The cycles columns the cycle figures read (no model spec, no unit lists).
CYCLE_COLUMNS = (
    Cycle.index,
    Cycle.widths,
    Cycle.widths_after,
    Cycle.params,
    Cycle.flops,
    Cycle.metric_name,
    Cycle.loss,
    Cycle.metric,
    Cycle.val_loss,
    Cycle.val_metric,
    Cycle.accepted,
)
EPOCH_COLUMNS = (
    EpochRow.cycle,
    EpochRow.epoch,
    EpochRow.loss,
    EpochRow.metric,
    EpochRow.val_loss,
    EpochRow.val_metric,
)
_CRITERION: TypeAdapter[Any] = TypeAdapter(Criterion)


class Out(BaseModel):
    """Base of this module's answers: immutable, non-finite floats serialised as ``null``."""

    model_config = ConfigDict(frozen=True)


class FigureIndex(Out):
    """What one experiment's page can draw: its figures, the cycles so far and the measured layers.

    Attributes:
        figures: the figure names ``GET .../figures/{name}`` accepts.
        cycles: indices of the finished cycles, ascending.
        layers: layers with activation statistics, in model order (for the heatmap and criterion).
        criterion: the spec's pruning criterion (``{"type": "apoz", "k": 1.0}``).
        metric_name: "accuracy" or "rmse"; None before the first cycle.
        tflite_rows: how many TFLite benchmarks are stored.
        final_cycle: the cycle whose model is kept (the recorded final cycle, else the newest accepted
            one); None before the first accepted cycle. The architecture diff defaults to cycle 0 → it.
        rejected: cycles rejected beyond the tolerance, ascending.
        cycle_marks: the words that mark the final and the rejected cycles, by cycle index ("final
            (kept)", "rejected"): the page's tables and selectors use the charts' words.
    """

    figures: list[str]
    cycles: list[int]
    layers: list[str]
    criterion: dict[str, Any]
    metric_name: str | None
    tflite_rows: int
    final_cycle: int | None = None
    rejected: list[int] = []
    cycle_marks: dict[str, str] = {}


@dataclass(frozen=True)
class FigureOptions:
    """How a figure is drawn (each figure reads the options that concern it).

    Attributes:
        stacked: widths: stack the layers' bars instead of grouping them.
        stage: widths: "after" (kept by the cycle's pruning) or "before" (trained).
        normalise: costs: percentages of the first cycle on one axis.
        log: training: log loss (and RMSE) axis, None: log when the values span decades; activations:
            log colour scale, None: log.
        layer: activations, criterion: the layer; default the first measured layer.
        cycle: criterion: the cycle; default the latest cycle with statistics.
    """

    stacked: bool = False
    stage: Stage = "after"
    normalise: bool = False
    log: bool | None = None
    layer: str | None = None
    cycle: int | None = None


# --------------------------------------------------------------------------------------------- loaders


def _cycles(session: Session, experiment_id: int, *, costs: bool = False) -> list[CycleRow]:
    columns = (*CYCLE_COLUMNS, Cycle.layer_costs) if costs else CYCLE_COLUMNS
    rows = session.execute(
        select(*columns).where(Cycle.experiment_id == experiment_id).order_by(Cycle.index)
    ).mappings()
    return [CycleRow.of(row) for row in rows]


def _epochs(session: Session, experiment_id: int) -> list[EpochPoint]:
    rows = session.execute(
        select(*EPOCH_COLUMNS)
        .where(EpochRow.experiment_id == experiment_id)
        .order_by(EpochRow.cycle, EpochRow.epoch)
    ).mappings()
    return [EpochPoint.of(row) for row in rows]


def _tflite(session: Session, experiment_id: int) -> list[TFLiteBenchmarkOut]:
    rows = session.scalars(
        select(TFLiteBenchmark)
        .where(TFLiteBenchmark.experiment_id == experiment_id)
        .order_by(TFLiteBenchmark.cycle_index, TFLiteBenchmark.format)
    )
    return [TFLiteBenchmarkOut.model_validate(row) for row in rows]


def _measured_layers(session: Session, experiment_id: int) -> list[str]:
    """Layers with statistics in any cycle, in the order the recorder wrote them."""
    names = session.scalars(
        select(LayerStatsRow.layer)
        .join(Cycle, LayerStatsRow.cycle_id == Cycle.id)
        .where(Cycle.experiment_id == experiment_id)
        .order_by(Cycle.index, LayerStatsRow.id)
    )
    return list(dict.fromkeys(names))


@dataclass(frozen=True)
class ExperimentFacts:
    """What every figure of one experiment may need besides its rows.

    Attributes:
        criterion: the spec's pruning criterion with defaults.
        metric_name: "accuracy" or "rmse"; None before the first cycle.
        final_cycle: the recorded final cycle (None until the experiment finishes).
        prunable: the layers pruning can shrink, in model order (None when the spec has no model).
        layer_criteria: the criterion of each layer named in ``pruning.rules``, with defaults.
    """

    criterion: dict[str, Any]
    metric_name: str | None
    final_cycle: int | None
    prunable: list[str] | None
    layer_criteria: dict[str, dict[str, Any]] = field(default_factory=dict)


def _experiment_facts(session: Session, experiment_id: int) -> ExperimentFacts:
    """The spec's criterion and prunable layers, the experiment's metric name and final cycle.

    Raises:
        NotFound: no such experiment.
    """
    row = session.execute(
        select(Experiment.spec, Experiment.metric_name, Experiment.final_cycle).where(
            Experiment.id == experiment_id
        )
    ).one_or_none()
    if row is None:
        raise NotFound("experiment", experiment_id)
    spec, metric_name, final_cycle = row
    criterion = criterion_of(spec)
    return ExperimentFacts(
        criterion, metric_name, final_cycle, prunable_layers(spec), rule_criteria(spec, criterion)
    )


def rule_criteria(spec: Mapping[str, Any] | None, default: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The criterion of every layer a stored spec's ``pruning.rules`` names (a rule without one: ``default``).

    Args:
        spec: the experiment's stored spec.
        default: the spec's pruning criterion (``criterion_of``).
    """
    pruning = (spec or {}).get("pruning") or {}
    rules = pruning.get("rules") if isinstance(pruning, Mapping) else None
    out: dict[str, dict[str, Any]] = {}
    for rule in rules if isinstance(rules, list) else []:
        if not isinstance(rule, Mapping):
            continue
        written = rule.get("criterion")
        criterion = default if written is None else criterion_of({"pruning": {"criterion": written}})
        for layer in rule.get("layers") or []:
            out[str(layer)] = criterion
    return out


def prunable_layers(spec: Mapping[str, Any] | None) -> list[str] | None:
    """The layers of a stored spec's model that pruning can shrink (never the output layer).

    Args:
        spec: the experiment's stored spec.

    Returns:
        the names in model order, or None when the spec's model cannot be read.
    """
    model = (spec or {}).get("model")
    if isinstance(model, Mapping) and set(model) == {"preset"}:
        model = model["preset"]
    try:
        built = preset(model) if isinstance(model, str) else ModelSpec.model_validate(model)
    except ValueError:  # pydantic.ValidationError is one; so is an unknown preset
        return None
    return built.prunable_names()


def _marks(session: Session, experiment_id: int, final_cycle: int | None) -> CycleMarks:
    """The final and rejected cycles of an experiment (two small columns of its cycles)."""
    rows = session.execute(
        select(Cycle.index, Cycle.accepted).where(Cycle.experiment_id == experiment_id)
    ).mappings()
    return CycleMarks.of([_IndexAccepted(row["index"], row["accepted"]) for row in rows], final_cycle)


@dataclass(frozen=True)
class _IndexAccepted:
    index: int
    accepted: bool


def criterion_of(spec: Mapping[str, Any] | None) -> dict[str, Any]:
    """The pruning criterion of a stored spec with its defaults filled in (APoZ when absent or unknown).

    Args:
        spec: the experiment's stored spec.
    """
    pruning = (spec or {}).get("pruning") or {}
    criterion = pruning.get("criterion", "apoz") if isinstance(pruning, Mapping) else "apoz"
    written = {"type": criterion} if isinstance(criterion, str) else dict(criterion or {})
    try:
        result: dict[str, Any] = _CRITERION.validate_python(written).model_dump(mode="json")
    except pydantic.ValidationError:
        result = written if written.get("type") in CRITERIA else {"type": "apoz"}
    return result


def _choose_layer(layers: Sequence[str], layer: str | None, experiment_id: int) -> str | None:
    if layer is None:
        return layers[0] if layers else None
    if layer not in layers:
        raise NotFound("layer", f"'{layer}' with statistics in experiment {experiment_id}")
    return layer


# --------------------------------------------------------------------------------------------- index


def figure_index(session: Session, experiment_id: int) -> FigureIndex:
    """What the experiment's page can draw so far.

    Raises:
        NotFound: no such experiment.
    """
    facts = _experiment_facts(session, experiment_id)
    marks = _marks(session, experiment_id, facts.final_cycle)
    cycles = session.scalars(
        select(Cycle.index).where(Cycle.experiment_id == experiment_id).order_by(Cycle.index)
    )
    count = session.scalar(
        select(func.count())
        .select_from(TFLiteBenchmark)
        .where(TFLiteBenchmark.experiment_id == experiment_id)
    )
    return FigureIndex(
        figures=list(FIGURE_NAMES),
        cycles=list(cycles),
        layers=_measured_layers(session, experiment_id),
        criterion=facts.criterion,
        metric_name=facts.metric_name,
        tflite_rows=count or 0,
        final_cycle=marks.final,
        rejected=sorted(marks.rejected),
        cycle_marks=marks.words(),
    )


# --------------------------------------------------------------------------------------------- figures


def experiment_figure(
    session: Session, experiment_id: int, name: FigureName, options: FigureOptions | None = None
) -> Figure:
    """One figure of one experiment as Plotly JSON.

    Args:
        session: an open session.
        experiment_id: the experiment.
        name: one of :data:`FIGURE_NAMES`.
        options: how to draw it. Default: every option's default.

    Returns:
        The figure dict; its ``uirevision`` is stable across live updates of the same view.

    Raises:
        NotFound: no such experiment, or a layer or cycle without statistics.
    """
    options = options or FigureOptions()
    facts = _experiment_facts(session, experiment_id)
    revision = f"{experiment_id}:{name}"
    if name in ("widths", "costs", "metric-flops"):
        return _cycle_figure(session, experiment_id, name, facts, options, revision)
    marks = _marks(session, experiment_id, facts.final_cycle)
    if name == "training":
        return training_figure(
            _epochs(session, experiment_id),
            facts.metric_name,
            log_loss=options.log,
            marks=marks,
            uirevision=revision,
        )
    if name == "tflite":
        return tflite_figure(
            [TFLiteRow.of(row) for row in _tflite(session, experiment_id)], marks=marks, uirevision=revision
        )
    if name == "speedup":
        rows = [TFLiteRow.of(row) for row in _tflite(session, experiment_id)]
        return speedup_figure(_cycles(session, experiment_id), rows, marks=marks, uirevision=revision)
    if name == "activations":
        return _activations(session, experiment_id, options, marks, revision)
    return _criterion(session, experiment_id, facts, options, revision)


def _cycle_figure(
    session: Session,
    experiment_id: int,
    name: FigureName,
    facts: ExperimentFacts,
    options: FigureOptions,
    revision: str,
) -> Figure:
    """The figures drawn from the cycles alone: widths (prunable layers only), costs, metric vs FLOPs."""
    cycles = _cycles(session, experiment_id)
    marks = CycleMarks.of(cycles, facts.final_cycle)
    if name == "widths":
        return widths_figure(
            cycles,
            stacked=options.stacked,
            stage=options.stage,
            layers=facts.prunable,
            marks=marks,
            uirevision=revision,
        )
    if name == "costs":
        return costs_figure(cycles, normalise=options.normalise, marks=marks, uirevision=revision)
    return metric_flops_figure(cycles, facts.metric_name, marks=marks, uirevision=revision)


def _activations(
    session: Session, experiment_id: int, options: FigureOptions, marks: CycleMarks, revision: str
) -> Figure:
    layer = _choose_layer(_measured_layers(session, experiment_id), options.layer, experiment_id)
    if layer is None:
        return activation_heatmap_figure("–", [], uirevision=revision)
    rows = session.execute(
        select(Cycle.index, LayerStatsRow.histogram, LayerStatsRow.bin_edges)
        .join(Cycle, LayerStatsRow.cycle_id == Cycle.id)
        .where(Cycle.experiment_id == experiment_id, LayerStatsRow.layer == layer)
        .order_by(Cycle.index)
    ).all()
    histograms = [
        LayerHistogram.of(index, {"histogram": histogram, "bin_edges": edges})
        for index, histogram, edges in rows
    ]
    return activation_heatmap_figure(
        layer,
        histograms,
        log_colour=options.log is not False,
        marks=marks,
        uirevision=f"{revision}:{layer}",
    )


def _criterion(
    session: Session,
    experiment_id: int,
    facts: ExperimentFacts,
    options: FigureOptions,
    revision: str,
) -> Figure:
    layer = _choose_layer(_measured_layers(session, experiment_id), options.layer, experiment_id)
    if layer is None:
        return criterion_figure(UnitStats("–", 0, 0, (), (), ()), facts.criterion, (), uirevision=revision)
    criterion = facts.layer_criteria.get(layer, facts.criterion)  # a layer's rule, else the default
    statement = (
        select(
            Cycle.index,
            Cycle.removed,
            Cycle.folded,
            LayerStatsRow.outputs,
            LayerStatsRow.active,
            LayerStatsRow.zeros,
            LayerStatsRow.variance,
            LayerStatsRow.scores,
        )
        .join(Cycle, LayerStatsRow.cycle_id == Cycle.id)
        .where(Cycle.experiment_id == experiment_id, LayerStatsRow.layer == layer)
    )
    if options.cycle is None:
        statement = statement.order_by(Cycle.index.desc()).limit(1)
    else:
        statement = statement.where(Cycle.index == options.cycle)
    row = session.execute(statement).one_or_none()
    if row is None:
        raise NotFound("cycle", f"{options.cycle} with statistics of layer '{layer}'")
    index, removed, folded, outputs, active, zeros, variance, scores = row
    apoz = np.asarray(decode("zeros", zeros), dtype=np.float64) / max(int(outputs), 1)
    stats = UnitStats(
        layer=layer,
        cycle=index,
        outputs=int(outputs),
        active=decode("active", active).tolist(),
        apoz=apoz.tolist(),
        variance=decode("variance", variance).tolist(),
    )
    return criterion_figure(
        stats,
        criterion,
        list((removed or {}).get(layer, [])),
        folded=list((folded or {}).get(layer, [])),
        scores=None if scores is None else decode("scores", scores).tolist(),  # recorded weight scores
        uirevision=f"{revision}:{layer}",
    )
