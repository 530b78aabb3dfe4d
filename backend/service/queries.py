"""Reading experiments: the listing, one experiment, its cycles, epochs, layer statistics and artifacts.

Every function takes an open session and returns schemas, never ORM rows. The listing reads only the
experiments table's summary columns; one experiment loads its cycles' headline columns; only the layer
endpoint reads the per-unit blobs, and only for one cycle.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, Integer, Select, case, cast, column, exists, func, literal, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session, load_only, undefer
from sqlalchemy.sql.elements import UnaryExpression

from backend.arrays import decode
from backend.models import Artifact, Cycle, EpochRow, Experiment, LayerStatsRow
from backend.schemas import (
    ArtifactOut,
    CycleDetail,
    CycleLayers,
    CycleSummary,
    EpochOut,
    ExperimentDetail,
    ExperimentPage,
    ExperimentQuery,
    ExperimentSummary,
    LayerStatsOut,
    SortKey,
)
from backend.service.errors import NotFound
from prunespec.metrics import HIGHER_IS_BETTER

#: Summary fields that are not experiments columns (the listing derives them).
DERIVED_SUMMARY_FIELDS = frozenset({"max_cycles"})
#: The experiments columns a listing reads (never the whole ``spec``, never another table).
SUMMARY_COLUMNS = tuple(
    getattr(Experiment, name) for name in ExperimentSummary.model_fields if name not in DERIVED_SUMMARY_FIELDS
)
#: The one number of the spec the listing reads: when the cycles stop at the latest.
MAX_CYCLES = cast(Experiment.spec[("pruning", "max_cycles")].as_string(), Integer)
#: The cycles columns one experiment's page reads (never the model spec, costs or unit lists).
CYCLE_SUMMARY_COLUMNS = tuple(getattr(Cycle, name) for name in CycleSummary.model_fields)
#: Per-unit blobs the layer endpoint always decodes.
UNIT_ARRAYS = ("active", "zeros", "mean", "variance", "minimum", "maximum")

SORT_COLUMNS: dict[SortKey, Any] = {
    "created": Experiment.created_at,
    "name": func.lower(Experiment.name),
    "status": Experiment.status,
    "owner": Experiment.owner,
    "final_metric": Experiment.final_metric,
    "best_metric": Experiment.best_metric,
    "final_params": Experiment.final_params,
    "final_flops": Experiment.final_flops,
    "cycles_done": Experiment.cycles_done,
    "id": Experiment.id,
}


@dataclass(frozen=True)
class ArtifactFile:
    """An artifact's bytes and how to name them in a download."""

    filename: str
    media_type: str
    sha256: str
    content: bytes


# --------------------------------------------------------------------------------------------- listing


def _has_tag(session: Session, tag: str) -> ColumnElement[bool]:
    """``tag`` is one of the experiment's tags (a JSON list), in the session's SQL dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(Experiment.tags, JSONB).contains([tag])
    values = func.json_each(Experiment.tags).table_valued("value")
    return exists(select(literal(1)).select_from(values).where(column("value") == tag))


def _filters(session: Session, query: ExperimentQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if query.status:
        conditions.append(Experiment.status.in_([status.value for status in query.status]))
    if query.owner is not None:
        conditions.append(Experiment.owner == query.owner)
    if query.q is not None:
        conditions.append(func.lower(Experiment.name).contains(query.q.lower(), autoescape=True))
    if query.tag is not None:
        conditions.append(_has_tag(session, query.tag))
    return conditions


#: The metric sort keys: each sorts by goodness (see :func:`_goodness`) within its metric name.
METRIC_SORTS = frozenset({"final_metric", "best_metric"})


def _goodness(value: Any) -> ColumnElement[Any]:
    """The metric where higher is better, its negation where lower is (``prunespec.metrics``)."""
    return case((Experiment.metric_name.in_(sorted(HIGHER_IS_BETTER)), value), else_=-value)


def _ordering(query: ExperimentQuery) -> list[UnaryExpression[Any]]:
    key = SORT_COLUMNS[query.sort]
    tie = Experiment.id.desc() if query.order == "desc" else Experiment.id.asc()
    if query.sort in METRIC_SORTS:
        # accuracy high-is-good and RMSE low-is-good never mix: group by metric, then best first (desc)
        good = _goodness(key)
        direction = good.desc() if query.order == "desc" else good.asc()
        return [Experiment.metric_name.asc().nulls_last(), direction.nulls_last(), tie]
    direction = key.desc() if query.order == "desc" else key.asc()
    return [direction.nulls_last(), tie]


def list_experiments(
    session: Session, query: ExperimentQuery, projects: Collection[int] | None = None
) -> ExperimentPage:
    """One page of experiments matching the query, and how many match in all.

    Args:
        session: an open session.
        query: filters, order and page.
        projects: only experiments in these projects. Default None: every project.

    Returns:
        The page; each item carries only the experiments table's summary columns.
    """
    conditions = _filters(session, query)
    if projects is not None:
        conditions.append(Experiment.project_id.in_(list(projects)))
    total = session.scalar(select(func.count()).select_from(Experiment).where(*conditions)) or 0
    rows = session.execute(
        select(Experiment, MAX_CYCLES)
        .options(load_only(*SUMMARY_COLUMNS, raiseload=True))
        .where(*conditions)
        .order_by(*_ordering(query))
        .limit(query.limit)
        .offset(query.offset)
    )
    items = [
        ExperimentSummary.model_validate(row).model_copy(update={"max_cycles": max_cycles})
        for row, max_cycles in rows
    ]
    return ExperimentPage(items=items, total=total, limit=query.limit, offset=query.offset)


# --------------------------------------------------------------------------------------------- one


def require_experiment(session: Session, experiment_id: int) -> None:
    """Raise NotFound unless the experiment exists."""
    if session.scalar(select(Experiment.id).where(Experiment.id == experiment_id)) is None:
        raise NotFound("experiment", experiment_id)


def get_summary(session: Session, experiment_id: int) -> ExperimentSummary:
    """One experiment's summary columns.

    Raises:
        NotFound: no such experiment.
    """
    row = session.scalars(
        select(Experiment).options(load_only(*SUMMARY_COLUMNS)).where(Experiment.id == experiment_id)
    ).one_or_none()
    if row is None:
        raise NotFound("experiment", experiment_id)
    return ExperimentSummary.model_validate(row)


def _cycles(experiment_id: int) -> Select[Cycle]:
    return select(Cycle).where(Cycle.experiment_id == experiment_id).order_by(Cycle.index)


def get_experiment(session: Session, experiment_id: int) -> ExperimentDetail:
    """One experiment with its spec, state and every finished cycle's headline numbers.

    Raises:
        NotFound: no such experiment.
    """
    row = session.get(Experiment, experiment_id)
    if row is None:
        raise NotFound("experiment", experiment_id)
    cycles = session.scalars(_cycles(experiment_id).options(load_only(*CYCLE_SUMMARY_COLUMNS)))
    data = {
        name: getattr(row, name)
        for name in ExperimentDetail.model_fields
        if name != "cycles" and name not in DERIVED_SUMMARY_FIELDS
    }
    pruning = (row.spec or {}).get("pruning") or {}
    data["max_cycles"] = pruning.get("max_cycles") if isinstance(pruning, dict) else None
    data["cycles"] = [CycleSummary.model_validate(cycle) for cycle in cycles]
    return ExperimentDetail.model_validate(data)


def list_cycles(session: Session, experiment_id: int) -> list[CycleDetail]:
    """Every finished cycle of an experiment in full (layer statistics excluded), in order.

    Raises:
        NotFound: no such experiment.
    """
    require_experiment(session, experiment_id)
    return [CycleDetail.model_validate(cycle) for cycle in session.scalars(_cycles(experiment_id))]


def list_epochs(session: Session, experiment_id: int, cycle: int | None = None) -> list[EpochOut]:
    """The experiment's training epochs so far, by cycle then epoch.

    Args:
        session: an open session.
        experiment_id: the experiment.
        cycle: only this cycle's epochs. Default None: every cycle's.

    Raises:
        NotFound: no such experiment.
    """
    require_experiment(session, experiment_id)
    statement = select(EpochRow).where(EpochRow.experiment_id == experiment_id)
    if cycle is not None:
        statement = statement.where(EpochRow.cycle == cycle)
    rows = session.scalars(statement.order_by(EpochRow.cycle, EpochRow.epoch))
    return [EpochOut.model_validate(row) for row in rows]


# --------------------------------------------------------------------------------------------- layers


def _layer_stats(row: LayerStatsRow, unit_histograms: bool) -> LayerStatsOut:
    arrays = {name: decode(name, getattr(row, name)) for name in UNIT_ARRAYS}
    zeros = arrays["zeros"]
    apoz = np.asarray(zeros, dtype=np.float64) / max(row.outputs, 1)
    histograms = None
    if unit_histograms:
        histograms = decode("unit_histograms", row.unit_histograms, row.units).tolist()
    return LayerStatsOut(
        layer=row.layer,
        units=row.units,
        outputs=row.outputs,
        summary=row.summary,
        histogram=row.histogram,
        bin_edges=row.bin_edges,
        apoz=apoz.tolist(),
        unit_histograms=histograms,
        **{name: values.tolist() for name, values in arrays.items()},
    )


def cycle_layers(
    session: Session, experiment_id: int, index: int, *, unit_histograms: bool = False
) -> CycleLayers:
    """One cycle's activation statistics per measured layer, per-unit arrays decoded.

    Args:
        session: an open session.
        experiment_id: the experiment.
        index: the cycle's index (0 is the first).
        unit_histograms: also decode every unit's histogram (the largest blob). Default False.

    Raises:
        NotFound: no such experiment, or it has no cycle ``index`` (yet).
    """
    cycle_id = session.scalar(
        select(Cycle.id).where(Cycle.experiment_id == experiment_id, Cycle.index == index)
    )
    if cycle_id is None:
        require_experiment(session, experiment_id)
        raise NotFound("cycle", f"{index} of experiment {experiment_id}")
    blobs = [undefer(getattr(LayerStatsRow, name)) for name in UNIT_ARRAYS]
    if unit_histograms:
        blobs.append(undefer(LayerStatsRow.unit_histograms))
    rows = session.scalars(
        select(LayerStatsRow)
        .options(*blobs)
        .where(LayerStatsRow.cycle_id == cycle_id)
        .order_by(LayerStatsRow.id)
    )
    layers = [_layer_stats(row, unit_histograms) for row in rows]
    return CycleLayers(experiment_id=experiment_id, cycle=index, layers=layers)


# --------------------------------------------------------------------------------------------- artifacts


def list_artifacts(session: Session, experiment_id: int) -> list[ArtifactOut]:
    """The experiment's stored files (without their bytes), by cycle then kind.

    Raises:
        NotFound: no such experiment.
    """
    require_experiment(session, experiment_id)
    rows = session.scalars(
        select(Artifact)
        .where(Artifact.experiment_id == experiment_id)
        .order_by(Artifact.cycle_index.nulls_last(), Artifact.kind, Artifact.id)
    )
    return [ArtifactOut.model_validate(row) for row in rows]


def artifact_file(session: Session, artifact_id: int) -> ArtifactFile:
    """An artifact's bytes and download name, looked up by id only.

    Raises:
        NotFound: no such artifact.
    """
    row = session.scalars(
        select(Artifact).options(undefer(Artifact.content)).where(Artifact.id == artifact_id)
    ).one_or_none()
    if row is None:
        raise NotFound("artifact", artifact_id)
    return ArtifactFile(
        filename=row.filename, media_type=row.media_type, sha256=row.sha256, content=row.content
    )
