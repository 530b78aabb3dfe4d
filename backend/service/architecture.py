"""The architecture diff of one experiment: two cycles' models layer by layer (with each layer's inputs and
dependency groups), the groups' widths before → after, and the model drawn as a graph.

Reads the cycles' stored model specs; a spec stored before models were graphs (no ``inputs``) is read
as the chain it is (``prunespec`` validation fills the inputs). A stored spec that no longer validates
still gives the table, with each layer reading the one before it and no groups.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.figures import CycleRow, LayerDiff, architecture_diff
from backend.figures.graph import INPUT, GraphNode, architecture_graph_figure
from backend.models import Cycle
from backend.service.errors import NotFound
from backend.service.figures import CYCLE_COLUMNS
from backend.service.queries import require_experiment
from prunespec.groups import Group, dependency_groups, layer_inputs
from prunespec.layers import ModelSpec


class Out(BaseModel):
    """Base of this module's answers: immutable."""

    model_config = ConfigDict(frozen=True)


class LayerDiffOut(Out):
    """One layer of the architecture diff (see ``backend.figures.LayerDiff``).

    Attributes:
        inputs: the layers it reads (``"input"`` for the model's input), in order.
        groups: the dependency groups whose channels it produces or carries (several for a
            concatenation; none for a flatten or a reshape).
    """

    name: str
    type: str | None
    width_before: int | None
    width_after: int | None
    units_removed: int | None
    params_before: int | None
    params_after: int | None
    flops_before: int | None
    flops_after: int | None
    change: str
    inputs: list[str] = []
    groups: list[str] = []


class GroupDiffOut(Out):
    """One dependency group's width before → after.

    Attributes:
        name: the group (its first producer's name; the key of its widths).
        producers: the layers whose output channels are the group's channels.
        width_before, width_after: its channels in the two models (None where unknown).
        fixed: why it cannot shrink; None when it is prunable.
    """

    name: str
    producers: list[str]
    width_before: int | None
    width_after: int | None
    fixed: str | None


class ArchitectureDiffOut(Out):
    """Two cycles' models layer by layer; ``after`` None means ``before``'s own pruning.

    Attributes:
        groups: the before model's dependency groups with their widths (empty when its spec cannot
            be read).
        graph: the before model drawn as a graph, widths before → after (Plotly JSON).
    """

    before: int
    after: int | None
    layers: list[LayerDiffOut]
    groups: list[GroupDiffOut] = []
    graph: dict[str, Any] | None = None


@dataclass(frozen=True)
class ModelGraph:
    """What the diff needs of one model: each layer's inputs and groups, and the groups' widths.

    Attributes:
        input_shape: the model's input shape.
        layers: ``(name, type, inputs)`` per layer, in model order.
        groups: its dependency groups (empty when they cannot be traced).
    """

    input_shape: tuple[int, ...]
    layers: tuple[tuple[str, str, tuple[str, ...]], ...]
    groups: tuple[Group, ...]

    @classmethod
    def of(cls, model: ModelSpec) -> ModelGraph:
        """The graph of a validated model."""
        try:
            groups = tuple(dependency_groups(model))
        except ValueError:
            groups = ()
        inputs = layer_inputs(model)
        layers = tuple((layer.key, layer.type, inputs[layer.key]) for layer in model.layers)
        return cls(tuple(model.input_shape), layers, groups)

    def widths(self) -> dict[str, int]:
        """Each group's width by group name."""
        return {group.name: group.width for group in self.groups}

    def layer_groups(self) -> dict[str, list[str]]:
        """The groups each layer produces or carries, by layer name (in group order)."""
        out: dict[str, list[str]] = {}
        for group in self.groups:
            for name in (*group.producers, *group.members):
                out.setdefault(name, [])
                if group.name not in out[name]:
                    out[name].append(group.name)
        return out


def read_model(model_spec: Mapping[str, Any] | None) -> ModelSpec | None:
    """A stored model spec validated again (inputs filled in), or None when it no longer validates."""
    try:
        return ModelSpec.model_validate(model_spec)
    except ValueError:  # pydantic.ValidationError is one
        return None


def _kept_model(model: ModelSpec | None, widths_after: Mapping[str, int]) -> ModelSpec | None:
    """The model a cycle's pruning kept: its trained model with the widths it kept."""
    if model is None:
        return None
    try:
        return model.with_widths(dict(widths_after))
    except ValueError:
        return None


def _chain(rows: Sequence[LayerDiff]) -> dict[str, tuple[str, ...]]:
    """Inputs when a model cannot be read: each layer reads the one before it."""
    names = [row.name for row in rows]
    return {name: ((INPUT,) if index == 0 else (names[index - 1],)) for index, name in enumerate(names)}


def diff_out(
    rows: Sequence[LayerDiff],
    before_graph: ModelGraph | None,
    after_graph: ModelGraph | None,
    widths_after: Mapping[str, int],
    *,
    uirevision: str,
) -> tuple[list[LayerDiffOut], list[GroupDiffOut], dict[str, Any]]:
    """The diff's layers with inputs and groups, its groups with widths, and the drawn graph.

    Args:
        rows: the layer rows of ``backend.figures.architecture_diff``.
        before_graph, after_graph: the two models' graphs (None where a spec cannot be read).
        widths_after: the widths the later model has by group name, used where ``after_graph`` is
            None (a cycle's own pruning whose kept model cannot be rebuilt).
        uirevision: the figure's ``uirevision``.

    Returns:
        ``(layers, groups, figure)``.
    """
    inputs: dict[str, tuple[str, ...]] = _chain(rows)
    for graph in (after_graph, before_graph):  # the before model's inputs win
        if graph is not None:
            inputs.update({name: layer_inputs for name, _, layer_inputs in graph.layers})
    layer_groups = before_graph.layer_groups() if before_graph else {}
    after_widths = after_graph.widths() if after_graph else {}
    groups = [
        GroupDiffOut(
            name=group.name,
            producers=list(group.producers),
            width_before=group.width,
            width_after=after_widths.get(group.name, widths_after.get(group.name)),
            fixed=group.fixed,
        )
        for group in (before_graph.groups if before_graph else ())
    ]
    by_group = {group.name: group for group in groups}
    layers = [
        LayerDiffOut.model_validate(
            {
                **row.as_dict(),
                **_carried_widths(row, layer_groups.get(row.name, []), by_group),
                "inputs": list(inputs.get(row.name, ())),
                "groups": layer_groups.get(row.name, []),
            }
        )
        for row in rows
    ]
    if before_graph is not None:
        described = [(name, kind, layer_inputs) for name, kind, layer_inputs in before_graph.layers]
        shape: Sequence[int] = before_graph.input_shape
    else:
        described = [(row.name, row.type or "", inputs[row.name]) for row in rows if row.type is not None]
        shape = ()
    nodes = [
        _node(name, kind, layer_inputs, layer_groups.get(name, []), by_group)
        for name, kind, layer_inputs in described
    ]
    try:
        figure = architecture_graph_figure(nodes, shape, uirevision=uirevision)
    except ValueError:  # a stored model whose layers read later ones; the table still shows them
        figure = architecture_graph_figure([], shape, uirevision=uirevision)
    return layers, groups, figure


def _carried_widths(
    row: LayerDiff, groups: Sequence[str], by_group: Mapping[str, GroupDiffOut]
) -> dict[str, Any]:
    """A layer without channels of its own (batch norm, add, pooling, ...) in both models: the widths of
    the groups it carries (summed over a concatenation's groups) and whether they shrank. Nothing
    for a producer (its own widths stand) or a layer only one model has."""
    if row.width_before is not None or row.width_after is not None or row.change in ("added", "dropped"):
        return {}
    carried = [by_group[group] for group in groups if group in by_group]
    before = [group.width_before for group in carried]
    after = [group.width_after for group in carried]
    if not carried or None in before or None in after:
        return {}
    width_before = sum(width for width in before if width is not None)
    width_after = sum(width for width in after if width is not None)
    change = (
        "unchanged" if width_after == width_before else "pruned" if width_after < width_before else "grown"
    )
    return {"width_before": width_before, "width_after": width_after, "change": change}


def _node(
    name: str, kind: str, inputs: tuple[str, ...], groups: list[str], by_group: Mapping[str, GroupDiffOut]
) -> GraphNode:
    """A layer for the drawing: its output channels are the sum of the widths of the groups it carries."""
    carried = [by_group[group] for group in groups if group in by_group]
    before = [group.width_before for group in carried]
    after = [group.width_after for group in carried]
    return GraphNode(
        name=name,
        type=kind,
        inputs=inputs,
        width_before=sum(w for w in before if w is not None) if carried and None not in before else None,
        width_after=sum(w for w in after if w is not None) if carried and None not in after else None,
        groups=tuple(groups),
        fixed=bool(carried) and all(group.fixed is not None for group in carried),
    )


def architecture(
    session: Session, experiment_id: int, before: int, after: int | None = None
) -> ArchitectureDiffOut:
    """The model of cycle ``before`` against the model of cycle ``after``, layer by layer.

    Args:
        session: an open session.
        experiment_id: the experiment.
        before: the earlier cycle's index.
        after: the later cycle's index; None compares ``before``'s trained widths with what its
            pruning kept.

    Raises:
        NotFound: no such experiment, or no such cycle.
    """
    wanted = {before} if after is None else {before, after}
    found = session.execute(
        select(*CYCLE_COLUMNS, Cycle.layer_costs, Cycle.model_spec).where(
            Cycle.experiment_id == experiment_id, Cycle.index.in_(wanted)
        )
    ).mappings()
    cycles: dict[int, CycleRow] = {}
    models: dict[int, ModelSpec | None] = {}
    for row in found:
        cycles[row["index"]] = CycleRow.of(row)
        models[row["index"]] = read_model(row["model_spec"])
    missing = sorted(wanted - set(cycles))
    if missing:
        require_experiment(session, experiment_id)
        raise NotFound("cycle", f"{missing[0]} of experiment {experiment_id}")
    first = cycles[before]
    rows = architecture_diff(first, None if after is None else cycles[after])
    model_before = models[before]
    model_after = _kept_model(model_before, first.widths_after) if after is None else models[after]
    layers, groups, graph = diff_out(
        rows,
        None if model_before is None else ModelGraph.of(model_before),
        None if model_after is None else ModelGraph.of(model_after),
        first.widths_after if after is None else cycles[after].widths,
        uirevision=f"{experiment_id}:architecture:{before}:{after}",
    )
    return ArchitectureDiffOut(before=before, after=after, layers=layers, groups=groups, graph=graph)
