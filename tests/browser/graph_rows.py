"""A finished graph experiment for the browser tests, written as the worker's recorder would write it:
cycles whose model specs name their inputs, widths by layer, statistics and removed channels by
dependency group (the group's name is its first producer's)."""

from __future__ import annotations

from typing import Any

import numpy as np
from dashboard_rows import BINS, History
from group_rows import group_stats_row, resized

from backend.db import session_scope
from backend.models import Cycle, Experiment, Status, utcnow
from prunespec.costs import model_cost
from prunespec.spec import ExperimentSpec

#: A residual block on MNIST: stem → c1 → c2, add(c2, stem) → global pool → dense. Groups: ``stem``
#: (producers stem and c2, joined by the add), ``c1``, and ``out`` (fixed: it feeds the output).
RESIDUAL_MODEL: dict[str, Any] = {
    "input_shape": [28, 28, 1],
    "layers": [
        {
            "type": "conv2d",
            "name": "stem",
            "filters": 8,
            "kernel_size": 3,
            "strides": 2,
            "padding": "same",
            "activation": "relu",
        },
        {
            "type": "conv2d",
            "name": "c1",
            "filters": 6,
            "kernel_size": 3,
            "padding": "same",
            "activation": "relu",
        },
        {"type": "conv2d", "name": "c2", "filters": 8, "kernel_size": 3, "padding": "same"},
        {"type": "add", "name": "sum", "inputs": ["c2", "stem"]},
        {"type": "global_avg_pool", "name": "pool"},
        {"type": "dense", "name": "out", "units": 10},
    ],
}


def residual_spec(name: str) -> ExperimentSpec:
    """The residual block on MNIST with APoZ."""
    return ExperimentSpec.model_validate(
        {
            "name": name,
            "model": RESIDUAL_MODEL,
            "dataset": {"name": "mnist", "train_samples": 2000, "test_samples": 500},
            "training": {"loss": "crossentropy", "epochs": 2},
            "pruning": {"criterion": {"type": "apoz", "k": 1.0}, "max_cycles": 3},
        }
    )


def zeros(width: int, rng: np.random.Generator) -> np.ndarray:
    """Zeros per channel of 2,000 measured values, APoZ spread as a trained layer's."""
    return (np.clip(rng.beta(2.0, 5.0, width), 0, 1) * 2000).astype(np.int64)


def finished_graph(history: History, spec: ExperimentSpec, widths: list[dict[str, int]]) -> int:
    """A succeeded experiment with one cycle per entry of ``widths`` (each maps group name to width).

    Args:
        history: the dashboard's row writer.
        spec: a graph spec.
        widths: the groups' widths each cycle trained; the last cycle keeps its own.

    Returns:
        the experiment's id.
    """
    experiment_id = history.experiment(spec, status=Status.succeeded)
    rng = np.random.default_rng(7)
    prunable = spec.model.prunable_names()
    for index, trained_widths in enumerate(widths):
        kept_widths = widths[index + 1] if index + 1 < len(widths) else trained_widths
        for epoch in range(2):
            history.epoch(
                experiment_id, index, epoch, loss=0.5 / (index + epoch + 1), metric=0.9 + 0.01 * epoch
            )
        trained = resized(spec.model, trained_widths)
        kept = resized(spec.model, kept_widths)
        cost = model_cost(trained)
        with session_scope(history.sessions) as session:
            session.add(
                Cycle(
                    experiment_id=experiment_id,
                    index=index,
                    model_spec=trained.model_dump(mode="json"),
                    widths=trained.widths(),
                    widths_after=kept.widths(),
                    params=cost.params,
                    flops=cost.flops,
                    layer_costs=[
                        {"name": one.name, "type": one.type, "params": one.params, "flops": one.flops}
                        for one in cost.layers
                    ],
                    removed={
                        group: list(range(kept_widths[group], trained_widths[group]))
                        for group in prunable
                        if group in trained_widths
                    },
                    folded={},
                    merged={},
                    metric_name="accuracy",
                    loss=0.2,
                    metric=0.95 - 0.01 * index,
                    val_loss=0.22,
                    val_metric=0.94 - 0.01 * index,
                    train_seconds=3.0,
                    stats_seconds=0.5,
                    prune_seconds=0.1,
                    layers=[
                        group_stats_row(group, zeros(trained.widths()[group], rng), outputs=2000, bins=BINS)
                        for group in prunable
                    ],
                )
            )
            experiment = session.get_one(Experiment, experiment_id)
            experiment.cycles_done = index + 1
            experiment.metric_name = "accuracy"
            experiment.final_cycle = index
            experiment.final_params = cost.params
            experiment.final_flops = cost.flops
            experiment.final_widths = trained.widths()
            experiment.final_metric = 0.94 - 0.01 * index
    history.update(experiment_id, progress=1.0, stop_reason="max_cycles", finished_at=utcnow())
    return experiment_id
