"""Plain results the engine hands out: dataclasses and NumPy arrays, never TensorFlow objects.

The one exception is the ``Reporter`` protocol, whose ``on_cycle`` receives the trained and the pruned
Keras models so that the caller (the CLI, the Celery recorder) can store them as artifacts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from prunespec.costs import LayerCost
from prunespec.layers import ModelSpec
from prunespec.stops import StopReason

if TYPE_CHECKING:
    import keras


@dataclass(frozen=True)
class LayerStats:
    """Activation statistics of one prunable layer's units, measured after its activation.

    Every array has one entry per unit (dense) or channel (convolution). A channel's statistics run
    over examples and spatial positions, so ``outputs`` = examples × height × width.

    Attributes:
        layer: layer name.
        outputs: values measured per unit.
        active: outputs > 0 per unit (Çallı's activation count).
        zeros: outputs exactly 0 per unit (APoZ numerator, Hu et al.).
        mean, variance, minimum, maximum: per unit, float64.
        histogram: (units, bins) counts of values in ``bin_edges``; values outside the edges fall
            into the first or last bin.
        bin_edges: (bins + 1,) shared by every unit of the layer.
    """

    layer: str
    outputs: int
    active: np.ndarray
    zeros: np.ndarray
    mean: np.ndarray
    variance: np.ndarray
    minimum: np.ndarray
    maximum: np.ndarray
    histogram: np.ndarray
    bin_edges: np.ndarray

    @property
    def units(self) -> int:
        return int(self.active.shape[0])

    @property
    def apoz(self) -> np.ndarray:
        """Average percentage of zeros per unit, in [0, 1]."""
        return np.asarray(self.zeros, dtype=np.float64) / max(self.outputs, 1)

    @property
    def layer_histogram(self) -> np.ndarray:
        """(bins,) histogram of every unit's values together."""
        return np.asarray(self.histogram).sum(axis=0)


@dataclass(frozen=True)
class Selection:
    """Units chosen for removal from one layer, by unit index in that layer."""

    remove: np.ndarray
    constant: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    merge: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def count(self) -> int:
        return int(len(self.remove))


@dataclass(frozen=True)
class EpochRecord:
    """One training epoch inside a cycle."""

    cycle: int
    epoch: int
    epochs: int
    loss: float
    metric: float
    val_loss: float | None
    val_metric: float | None
    seconds: float


@dataclass
class CycleResult:
    """Everything one cycle produced.

    Cycle k trains the model it was handed (``spec``, widths ``widths``), measures it, and chooses the
    units to remove; ``widths_after`` are the widths its pruning kept (a rejected cycle's model loses
    nothing: its own widths).

    Attributes:
        accepted: False when the validation metric fell beyond the tolerance; the last accepted
            cycle's model is then the result (and, with ``pruning.backoff``, what the next cycle's model
            is pruned from, with a smaller step).
        pruned_from: the cycle whose trained model this cycle's model was pruned from: the last accepted
            cycle before it (k − 1 unless cycles were rejected in between); None for cycle 0.
        scores: the per-unit weight scores (bn_scale, weight_norm) the cycle selected with, by layer
            (group), for the layers whose criterion reads weights; the others are left out.
    """

    index: int
    spec: ModelSpec
    widths: dict[str, int]
    params: int
    flops: int
    layer_costs: list[LayerCost]
    metric_name: str
    epochs: list[EpochRecord]
    loss: float
    metric: float
    val_loss: float
    val_metric: float
    stats: dict[str, LayerStats]
    removed: dict[str, list[int]]
    folded: dict[str, list[int]]
    merged: dict[str, list[int]]
    widths_after: dict[str, int]
    train_seconds: float
    stats_seconds: float
    prune_seconds: float
    accepted: bool = True
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    pruned_from: int | None = None

    @property
    def removed_count(self) -> int:
        return sum(len(units) for units in self.removed.values())

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary without the per-unit arrays."""
        return {
            "index": self.index,
            "widths": dict(self.widths),
            "widths_after": dict(self.widths_after),
            "params": self.params,
            "flops": self.flops,
            "layer_costs": [vars(cost) for cost in self.layer_costs],
            "metric_name": self.metric_name,
            "loss": self.loss,
            "metric": self.metric,
            "val_loss": self.val_loss,
            "val_metric": self.val_metric,
            "removed": {name: list(units) for name, units in self.removed.items()},
            "folded": {name: list(units) for name, units in self.folded.items()},
            "merged": {name: list(units) for name, units in self.merged.items()},
            "epochs": [vars(record) for record in self.epochs],
            "train_seconds": self.train_seconds,
            "stats_seconds": self.stats_seconds,
            "prune_seconds": self.prune_seconds,
            "accepted": self.accepted,
            "pruned_from": self.pruned_from,
            "stats": {
                name: {
                    "outputs": layer.outputs,
                    "apoz_mean": float(layer.apoz.mean()),
                    "apoz_std": float(layer.apoz.std()),
                    "variance_mean": float(layer.variance.mean()),
                    "dead": int((layer.active == 0).sum()),
                    "histogram": layer.layer_histogram.tolist(),
                    "bin_edges": layer.bin_edges.tolist(),
                }
                for name, layer in self.stats.items()
            },
        }


class Reporter(Protocol):
    """Where progress leaves the engine. Every method may be a no-op."""

    def on_epoch(self, record: EpochRecord) -> None: ...

    def on_cycle(self, result: CycleResult, trained: keras.Model, pruned: keras.Model | None) -> None: ...

    def cancelled(self) -> bool: ...


class NullReporter:
    """The default reporter: records nothing, never cancels."""

    def on_epoch(self, record: EpochRecord) -> None:
        return None

    def on_cycle(self, result: CycleResult, trained: keras.Model, pruned: keras.Model | None) -> None:
        return None

    def cancelled(self) -> bool:
        return False


@dataclass
class ExperimentResult:
    """The outcome of a run of cycles.

    Attributes:
        cycles: every cycle that ran, in order (rejected ones included, ``accepted`` False).
        final_position: where in ``cycles`` the cycle whose trained model is the result sits (the
            last accepted one); a position, not the cycle's index (a resumed run's ``cycles`` start
            after the resume point): ``final.index`` is the cycle.
        stop_reason: why the cycles stopped (``prunespec.stops.StopReason``: nothing_removed,
            max_cycles, tolerance, cancelled).
        model: the final trained Keras model (the trained model of ``final_position``). A resumed run
            whose every cycle was rejected or cancelled has ``final_position`` -1 and no model: the
            result is the cycle before the resume point, which its caller already holds.
    """

    cycles: list[CycleResult]
    final_position: int
    stop_reason: StopReason
    model: keras.Model | None

    @property
    def final(self) -> CycleResult:
        """The final (kept) cycle."""
        return self.cycles[self.final_position]
