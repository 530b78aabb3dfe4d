"""Experiments side by side: the compare table, its CSV and JSON exports, the settings table and the
compare figures.

A comparison reads, for at most :data:`backend.figures.MAX_COMPARED` experiments, their summary
columns and the headline columns of their cycles in one query each; epochs only for the loss figure
and TFLite rows only for the latency figure. Only the settings table and the parallel-coordinates
figure read specs (one query); nothing reads model files or per-unit blobs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.figures import (
    MAX_COMPARED,
    CompareTable,
    CycleRow,
    EpochPoint,
    ExperimentSeries,
    Figure,
    TFLiteRow,
    compare_csv,
    compare_loss_figure,
    compare_table,
    compare_widths_figure,
    pareto_figure,
)
from backend.figures.compare import speedup_rows
from backend.figures.settings import parcoords_figure, settings_table
from backend.models import Cycle, EpochRow, Experiment, TFLiteBenchmark
from backend.schemas import MAX_ID, experiment_path, parse_id
from backend.service.errors import InvalidInput, NotFound
from backend.service.figures import CYCLE_COLUMNS, EPOCH_COLUMNS, prunable_layers

CompareFigureName = Literal["widths", "loss", "pareto-flops", "pareto-latency", "parcoords"]
#: Every compare figure, in the order the page shows them.
COMPARE_FIGURES: tuple[CompareFigureName, ...] = (
    "widths",
    "pareto-flops",
    "pareto-latency",
    "parcoords",
    "loss",
)
ExportFormat = Literal["csv", "json"]

#: The experiments columns a comparison reads (no spec, no notes).
EXPERIMENT_COLUMNS = (
    Experiment.id,
    Experiment.name,
    Experiment.owner,
    Experiment.tags,
    Experiment.status,
    Experiment.created_at,
    Experiment.metric_name,
    Experiment.cycles_done,
    Experiment.final_cycle,
    Experiment.initial_params,
    Experiment.final_params,
    Experiment.initial_flops,
    Experiment.final_flops,
    Experiment.final_metric,
    Experiment.best_metric,
    Experiment.latency_speedup,
)


class Out(BaseModel):
    """Base of this module's answers: immutable, non-finite floats serialised as ``null``."""

    model_config = ConfigDict(frozen=True)


class ComparedExperiment(Out):
    """One compared experiment's identity and summary numbers (user text stays plain text)."""

    id: int
    name: str
    owner: str
    tags: list[str]
    status: str
    created_at: datetime
    metric_name: str | None
    cycles_done: int
    final_cycle: int | None
    initial_params: int | None
    final_params: int | None
    initial_flops: int | None
    final_flops: int | None
    final_metric: float | None
    best_metric: float | None
    latency_speedup: float | None
    url: str


class CycleOut(Out):
    """One cycle's headline numbers in an export."""

    index: int
    widths: dict[str, int]
    widths_after: dict[str, int]
    params: int
    flops: int
    loss: float | None
    metric: float | None
    val_loss: float | None
    val_metric: float | None
    accepted: bool


class CompareRowOut(Out):
    """One row of the compare table: a label and one cell per experiment, in column order."""

    label: str
    kind: Literal["summary", "layer"]
    values: list[int | float | str | None]


class CompareTableOut(Out):
    """Final architectures and headline numbers side by side; ``columns`` are "name (#id)"."""

    columns: list[str]
    rows: list[CompareRowOut]


class SettingRowOut(Out):
    """One spec setting across the compared experiments (``differs``: they disagree on it)."""

    setting: str
    values: list[int | float | str | None]
    differs: bool


class CompareSettingsOut(Out):
    """Every spec setting side by side; ``columns`` are "name (#id)", in ``ids`` order."""

    ids: list[int]
    columns: list[str]
    rows: list[SettingRowOut]


class Comparison(Out):
    """Everything the compare page and its JSON export show, besides the figures.

    Attributes:
        ids: the compared experiments, in column order.
        experiments: their summaries, in the same order.
        table: the compare table.
        cycles: per experiment id (as a string key), every finished cycle's headline numbers.
    """

    ids: list[int]
    experiments: list[ComparedExperiment]
    table: CompareTableOut
    cycles: dict[str, list[CycleOut]]


# --------------------------------------------------------------------------------------------- ids


def parse_ids(
    text: str | None, *, limit: int = MAX_COMPARED, field: Sequence[str] = ("query", "ids")
) -> list[int]:
    """Experiment ids from ``"1,2,3"``: whitespace ignored, duplicates dropped, order kept.

    Args:
        text: the comma-separated ids.
        limit: most ids accepted. Default :data:`MAX_COMPARED`.
        field: where the text came from, named in errors. Default the ``ids`` query parameter.

    Raises:
        InvalidInput: no ids, an id that is not a positive integer, or more than ``limit`` ids.
    """
    parts = [part.strip() for part in (text or "").split(",") if part.strip()]
    if not parts:
        raise InvalidInput(field, "name at least one experiment id, e.g. ids=1,2,3")
    ids: dict[int, None] = {}
    for part in parts:
        experiment_id = parse_id(part)
        if experiment_id is None:
            raise InvalidInput(
                field, f"'{part[:20]}' is not an experiment id (a decimal integer from 1 to {MAX_ID})"
            )
        ids[experiment_id] = None
    if len(ids) > limit:
        raise InvalidInput(field, f"at most {limit} experiments at once, not {len(ids)}")
    return list(ids)


# --------------------------------------------------------------------------------------------- loading


def _experiments(session: Session, ids: Sequence[int]) -> list[dict[str, Any]]:
    """The experiments' summary columns in ``ids`` order.

    Raises:
        NotFound: the first id that does not exist.
    """
    rows = session.execute(select(*EXPERIMENT_COLUMNS).where(Experiment.id.in_(ids))).mappings()
    by_id = {row["id"]: dict(row) for row in rows}
    for experiment_id in ids:
        if experiment_id not in by_id:
            raise NotFound("experiment", experiment_id)
    return [by_id[experiment_id] for experiment_id in ids]


def _cycles(session: Session, ids: Sequence[int]) -> dict[int, list[CycleRow]]:
    grouped: dict[int, list[CycleRow]] = defaultdict(list)
    rows = session.execute(
        select(Cycle.experiment_id, *CYCLE_COLUMNS)
        .where(Cycle.experiment_id.in_(ids))
        .order_by(Cycle.experiment_id, Cycle.index)
    ).mappings()
    for row in rows:
        grouped[row["experiment_id"]].append(CycleRow.of(row))
    return grouped


def _epochs(session: Session, ids: Sequence[int]) -> dict[int, list[EpochPoint]]:
    grouped: dict[int, list[EpochPoint]] = defaultdict(list)
    rows = session.execute(
        select(EpochRow.experiment_id, *EPOCH_COLUMNS)
        .where(EpochRow.experiment_id.in_(ids))
        .order_by(EpochRow.experiment_id, EpochRow.cycle, EpochRow.epoch)
    ).mappings()
    for row in rows:
        grouped[row["experiment_id"]].append(EpochPoint.of(row))
    return grouped


def _tflite(session: Session, ids: Sequence[int]) -> dict[int, list[TFLiteRow]]:
    grouped: dict[int, list[TFLiteRow]] = defaultdict(list)
    rows = session.execute(
        select(
            TFLiteBenchmark.experiment_id,
            TFLiteBenchmark.cycle_index,
            TFLiteBenchmark.format,
            TFLiteBenchmark.status,
            TFLiteBenchmark.model_bytes,
            TFLiteBenchmark.latency_median_us,
            TFLiteBenchmark.latency_p90_us,
            TFLiteBenchmark.keras_metric,
            TFLiteBenchmark.tflite_metric,
        ).where(TFLiteBenchmark.experiment_id.in_(ids))
    ).mappings()
    for row in rows:
        grouped[row["experiment_id"]].append(TFLiteRow.of(row))
    return grouped


def load_series(
    session: Session,
    ids: Sequence[int],
    *,
    epochs: bool = False,
    tflite: bool = False,
) -> tuple[list[dict[str, Any]], list[ExperimentSeries]]:
    """The experiments' summaries and their series (cycles always; epochs and TFLite rows on request).

    Args:
        session: an open session.
        ids: the experiments, in the order wanted.
        epochs: also read every training epoch. Default False.
        tflite: also read the TFLite benchmarks. Default False.

    Returns:
        (summary columns per experiment, series per experiment), both in ``ids`` order.

    Raises:
        NotFound: an id that does not exist.
    """
    heads = _experiments(session, ids)
    cycles = _cycles(session, ids)
    epoch_rows = _epochs(session, ids) if epochs else {}
    tflite_rows = _tflite(session, ids) if tflite else {}
    series = [
        ExperimentSeries(
            id=head["id"],
            name=head["name"],
            metric_name=head["metric_name"],
            cycles=tuple(cycles.get(head["id"], ())),
            epochs=tuple(epoch_rows.get(head["id"], ())),
            tflite=tuple(tflite_rows.get(head["id"], ())),
            final_cycle=head["final_cycle"],
        )
        for head in heads
    ]
    return heads, series


# --------------------------------------------------------------------------------------------- answers


def _cycle_out(cycle: CycleRow) -> CycleOut:
    return CycleOut(
        index=cycle.index,
        widths=dict(cycle.widths),
        widths_after=dict(cycle.widths_after),
        params=cycle.params,
        flops=cycle.flops,
        loss=cycle.loss,
        metric=cycle.metric,
        val_loss=cycle.val_loss,
        val_metric=cycle.val_metric,
        accepted=cycle.accepted,
    )


def _table(heads: Sequence[dict[str, Any]], series: Sequence[ExperimentSeries]) -> CompareTable:
    """The compare table with the speed-up rows after the headline numbers."""
    table = compare_table(series)
    summary = [row for row in table.rows if row.kind == "summary"]
    layers = [row for row in table.rows if row.kind != "summary"]
    speedups = speedup_rows(series, [head["latency_speedup"] for head in heads])
    return CompareTable(table.columns, (*summary, *speedups, *layers))


def _specs(session: Session, ids: Sequence[int]) -> list[dict[str, Any]]:
    rows = session.execute(select(Experiment.id, Experiment.spec).where(Experiment.id.in_(ids))).all()
    by_id = {row.id: dict(row.spec or {}) for row in rows}
    return [by_id.get(experiment_id, {}) for experiment_id in ids]


def compare_settings(session: Session, ids: Sequence[int]) -> CompareSettingsOut:
    """Every spec setting of the compared experiments side by side, differences marked.

    Raises:
        NotFound: an id that does not exist.
    """
    heads = _experiments(session, ids)
    rows = settings_table(_specs(session, ids))
    return CompareSettingsOut(
        ids=list(ids),
        columns=[f"{head['name']} (#{head['id']})" for head in heads],
        rows=[
            SettingRowOut(setting=row.setting, values=list(row.values), differs=row.differs) for row in rows
        ],
    )


def compare(session: Session, ids: Sequence[int]) -> Comparison:
    """The compare table and the compared experiments' cycles (no figures).

    Raises:
        NotFound: an id that does not exist.
    """
    heads, series = load_series(session, ids)
    table = _table(heads, series)
    return Comparison(
        ids=list(ids),
        experiments=[ComparedExperiment(**head, url=experiment_path(head["id"])) for head in heads],
        table=CompareTableOut(
            columns=list(table.columns),
            rows=[
                CompareRowOut(label=row.label, kind=row.kind, values=list(row.values)) for row in table.rows
            ],
        ),
        cycles={str(one.id): [_cycle_out(cycle) for cycle in one.cycles] for one in series},
    )


def export(session: Session, ids: Sequence[int], file_format: ExportFormat) -> tuple[str, str, str]:
    """The comparison as a downloadable file.

    Args:
        session: an open session.
        ids: the compared experiments.
        file_format: "csv" (the compare table; formulas defused) or "json" (:class:`Comparison`).

    Returns:
        (text, media type, file name).

    Raises:
        NotFound: an id that does not exist.
    """
    name = "prunelab-compare-" + "-".join(str(one) for one in ids[:5]) + ("-more" if len(ids) > 5 else "")
    if file_format == "csv":
        heads, series = load_series(session, ids)
        return compare_csv(_table(heads, series)), "text/csv; charset=utf-8", f"{name}.csv"
    return compare(session, ids).model_dump_json(indent=2), "application/json", f"{name}.json"


def compare_figure(
    session: Session,
    ids: Sequence[int],
    name: CompareFigureName,
    *,
    final_only: bool = False,
    log: bool = False,
    metric: str | None = None,
) -> Figure:
    """One compare figure as Plotly JSON.

    Args:
        session: an open session.
        ids: at most :data:`MAX_COMPARED` experiments.
        name: one of :data:`COMPARE_FIGURES`.
        final_only: Pareto figures: one point per experiment (its final cycle). Default False.
        log: Pareto figures: log cost axis; loss: unused. Default False.
        metric: Pareto figures: compare on this metric ("accuracy", "rmse"). Default: the first
            experiment's.

    Raises:
        NotFound: an id that does not exist.
    """
    _, series = load_series(session, ids, epochs=name == "loss", tflite=name == "pareto-latency")
    revision = f"compare:{name}:{','.join(str(one) for one in ids)}"
    if name == "widths":  # each experiment's prunable groups come from its spec (read for this figure only)
        groups = [prunable_layers(spec) for spec in _specs(session, ids)]
        series = [replace(one, prunable=prunable) for one, prunable in zip(series, groups, strict=True)]
        return compare_widths_figure(series, uirevision=revision)
    if name == "loss":
        return compare_loss_figure(series, uirevision=revision)
    if name == "parcoords":
        return parcoords_figure(series, _specs(session, ids), uirevision=revision)
    cost: Literal["flops", "latency"] = "flops" if name == "pareto-flops" else "latency"
    return pareto_figure(
        series, cost=cost, final_only=final_only, log_cost=log, uirevision=revision, metric=metric
    )
