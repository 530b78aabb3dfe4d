"""Light, immutable inputs of the figure functions, and their constructors from rows or schemas.

Each type's ``of`` builds it from anything carrying its field names, as attributes (an ORM row, a
response schema) or as keys (a dict), so the API maps its rows with one call, e.g.
``[CycleRow.of(cycle) for cycle in detail.cycles]``. Fields the source lacks take their defaults.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from backend.figures.common import CycleMarks

_MISSING = object()


def _get(source: object, name: str, default: Any = _MISSING) -> Any:
    """The ``name`` field of a mapping or an object; ``default`` when absent (KeyError without one)."""
    if isinstance(source, Mapping):
        value = source.get(name, default)
    else:
        value = getattr(source, name, default)
    if value is _MISSING:
        raise KeyError(f"{type(source).__name__} has no field '{name}'")
    return value


def _widths(value: object) -> dict[str, int]:
    """Widths by layer name as plain ints (an empty dict for None)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"widths must be a mapping, not {type(value).__name__}")
    return {str(name): int(width) for name, width in value.items()}


@dataclass(frozen=True)
class LayerCostRow:
    """Parameters and FLOPs of one layer of a cycle's model (one entry of ``Cycle.layer_costs``).

    Attributes:
        name: the layer's name in the spec.
        type: the layer type (``dense``, ``conv2d``, ``flatten``, ...).
        params: parameters of the layer.
        flops: FLOPs of the layer for one example at inference.
    """

    name: str
    type: str
    params: int
    flops: int

    @classmethod
    def of(cls, source: object) -> LayerCostRow:
        """A layer cost from a dict, ``LayerCost`` or ``LayerCostOut``."""
        return cls(
            name=str(_get(source, "name")),
            type=str(_get(source, "type", "")),
            params=int(_get(source, "params", 0)),
            flops=int(_get(source, "flops", 0)),
        )


@dataclass(frozen=True)
class CycleRow:
    """One finished cycle's headline numbers.

    Attributes:
        index: the cycle, from 0.
        widths: units (dense) or channels (conv) of every weighted layer of the model the cycle trained.
        widths_after: the widths the cycle's pruning kept (handed to the next cycle).
        params, flops: totals of the model the cycle trained.
        metric_name: "accuracy" (higher is better) or "rmse" (lower is better).
        loss, metric, val_loss, val_metric: the trained model's numbers; None when missing.
        accepted: False when the cycle fell beyond the tolerance and was rejected.
        layer_costs: per-layer costs, in model order (empty when the source has none).
    """

    index: int
    widths: Mapping[str, int]
    widths_after: Mapping[str, int]
    params: int
    flops: int
    metric_name: str = "accuracy"
    loss: float | None = None
    metric: float | None = None
    val_loss: float | None = None
    val_metric: float | None = None
    accepted: bool = True
    layer_costs: Sequence[LayerCostRow] = ()

    @classmethod
    def of(cls, source: object) -> CycleRow:
        """A cycle from a ``Cycle`` row, a ``CycleSummary``/``CycleDetail`` or a dict."""
        return cls(
            index=int(_get(source, "index")),
            widths=_widths(_get(source, "widths")),
            widths_after=_widths(_get(source, "widths_after", None) or _get(source, "widths")),
            params=int(_get(source, "params")),
            flops=int(_get(source, "flops")),
            metric_name=str(_get(source, "metric_name", "accuracy")),
            loss=_get(source, "loss", None),
            metric=_get(source, "metric", None),
            val_loss=_get(source, "val_loss", None),
            val_metric=_get(source, "val_metric", None),
            accepted=bool(_get(source, "accepted", True)),
            layer_costs=tuple(LayerCostRow.of(cost) for cost in _get(source, "layer_costs", None) or ()),
        )


@dataclass(frozen=True)
class EpochPoint:
    """One training epoch of one cycle.

    Attributes:
        cycle: the cycle, from 0.
        epoch: the epoch within the cycle.
        loss, metric: training numbers; None when missing.
        val_loss, val_metric: validation numbers; None when missing.
    """

    cycle: int
    epoch: int
    loss: float | None = None
    metric: float | None = None
    val_loss: float | None = None
    val_metric: float | None = None

    @classmethod
    def of(cls, source: object) -> EpochPoint:
        """An epoch from an ``EpochRow``, an ``EpochOut`` or a dict."""
        return cls(
            cycle=int(_get(source, "cycle")),
            epoch=int(_get(source, "epoch")),
            loss=_get(source, "loss", None),
            metric=_get(source, "metric", None),
            val_loss=_get(source, "val_loss", None),
            val_metric=_get(source, "val_metric", None),
        )


@dataclass(frozen=True)
class LayerHistogram:
    """One layer's histogram of activation values in one cycle.

    Attributes:
        cycle: the cycle, from 0.
        histogram: (bins,) counts of measured values.
        bin_edges: (bins + 1,) increasing edges; they may differ from cycle to cycle.
    """

    cycle: int
    histogram: Sequence[float]
    bin_edges: Sequence[float]

    @classmethod
    def of(cls, cycle: int, source: object) -> LayerHistogram:
        """A histogram from a ``LayerStatsRow``/``LayerStatsOut`` (or dict) and its cycle index."""
        return cls(
            cycle=int(cycle),
            histogram=tuple(_get(source, "histogram")),
            bin_edges=tuple(_get(source, "bin_edges")),
        )


@dataclass(frozen=True)
class UnitStats:
    """The per-unit statistics a pruning criterion reads, for one layer in one cycle.

    Attributes:
        layer: the layer's name.
        cycle: the cycle, from 0.
        outputs: values measured per unit.
        active: outputs above zero, per unit (activation count).
        apoz: average percentage of zeros per unit, in [0, 1].
        variance: output variance per unit (None where not finite).
    """

    layer: str
    cycle: int
    outputs: int
    active: Sequence[int]
    apoz: Sequence[float]
    variance: Sequence[float | None]

    @classmethod
    def of(cls, cycle: int, source: object) -> UnitStats:
        """Unit statistics from a ``LayerStatsOut`` (or dict) and its cycle index."""
        return cls(
            layer=str(_get(source, "layer")),
            cycle=int(cycle),
            outputs=int(_get(source, "outputs", 0)),
            active=tuple(_get(source, "active")),
            apoz=tuple(_get(source, "apoz")),
            variance=tuple(_get(source, "variance")),
        )


@dataclass(frozen=True)
class TFLiteRow:
    """One cycle's model converted to one TFLite format and timed.

    Attributes:
        cycle_index: the cycle whose model was converted.
        format: the TFLite format (e.g. float32, float16, dynamic-range int8).
        status: the benchmark's state; rows without numbers are skipped whatever it says.
        model_bytes: size of the ``.tflite`` file.
        latency_median_us, latency_p90_us: one inference, microseconds.
        keras_metric, tflite_metric: the metric of the Keras model and of the converted one on the
            same data (their difference is the conversion's fidelity).
    """

    cycle_index: int
    format: str
    status: str = "ok"
    model_bytes: int | None = None
    latency_median_us: float | None = None
    latency_p90_us: float | None = None
    keras_metric: float | None = None
    tflite_metric: float | None = None

    @classmethod
    def of(cls, source: object) -> TFLiteRow:
        """A benchmark from a ``TFLiteBenchmark`` row, a schema or a dict."""
        return cls(
            cycle_index=int(_get(source, "cycle_index")),
            format=str(_get(source, "format")),
            status=str(_get(source, "status", "ok")),
            model_bytes=_get(source, "model_bytes", None),
            latency_median_us=_get(source, "latency_median_us", None),
            latency_p90_us=_get(source, "latency_p90_us", None),
            keras_metric=_get(source, "keras_metric", None),
            tflite_metric=_get(source, "tflite_metric", None),
        )


@dataclass(frozen=True)
class ExperimentSeries:
    """One experiment as the compare views need it.

    Attributes:
        id: the experiment's id.
        name: its name (user text: escaped in figures, plain in tables and CSV).
        metric_name: "accuracy" or "rmse"; None before the first cycle.
        cycles: its finished cycles (any order).
        epochs: its training epochs (any order).
        tflite: its TFLite benchmarks.
        final_cycle: the cycle whose model is the result; None means the last accepted cycle.
        prunable: the groups pruning can shrink (their first producers' names), from its spec; None
            when unknown (then every weighted layer but the output counts, as widths alone tell).
    """

    id: int
    name: str
    metric_name: str | None = None
    cycles: Sequence[CycleRow] = ()
    epochs: Sequence[EpochPoint] = ()
    tflite: Sequence[TFLiteRow] = ()
    final_cycle: int | None = None
    prunable: Sequence[str] | None = None

    @property
    def label(self) -> str:
        """``name (#id)``, plain text (escape it before it enters a figure)."""
        return f"{self.name} (#{self.id})"

    @property
    def marks(self) -> CycleMarks:
        """Its final (kept) and rejected cycles."""
        return CycleMarks.of(self.cycles, self.final_cycle)

    @property
    def final(self) -> CycleRow | None:
        """The cycle whose model is the result: ``final_cycle``, else the last accepted cycle."""
        final = self.marks.final
        return next((cycle for cycle in self.cycles if cycle.index == final), None)


def cycle_order(cycles: Sequence[CycleRow]) -> list[CycleRow]:
    """Cycles sorted by index.

    Args:
        cycles: cycles in any order.

    Returns:
        a new list, by ascending ``index``.
    """
    return sorted(cycles, key=lambda cycle: cycle.index)


__all__ = [
    "CycleRow",
    "EpochPoint",
    "ExperimentSeries",
    "LayerCostRow",
    "LayerHistogram",
    "TFLiteRow",
    "UnitStats",
    "cycle_order",
]
