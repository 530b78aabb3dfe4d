"""Shared helpers for surgery on graphs: plant constant channels, plan their removal from measurements."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
import numpy as np

from prunespec.groups import groups_by_name
from prunespec.layers import ModelSpec
from worker.engine.criteria import constant_units
from worker.engine.group_stats import combine
from worker.engine.stats import measure_probes
from worker.engine.surgery import OUTPUT_AXES, LayerPlan


def randomise(model: keras.Model, rng: np.random.Generator) -> None:
    """Give every batch norm parameters far from the identity and every bias a random value."""
    for layer in model.layers:
        if not isinstance(layer, keras.layers.BatchNormalization):
            weights = layer.get_weights()
            if weights and getattr(layer, "use_bias", False):
                weights[-1] = rng.normal(0.1, 0.3, weights[-1].shape).astype("float32")
                layer.set_weights(weights)
        else:
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma.shape).astype("float32"),
                    rng.normal(0, 0.3, beta.shape).astype("float32"),
                    rng.normal(0, 0.3, mean.shape).astype("float32"),
                    rng.uniform(0.5, 1.5, variance.shape).astype("float32"),
                ]
            )


def plant(model: keras.Model, spec: ModelSpec, group: str, channels: Sequence[int], value: float) -> None:
    """Make the group's channels constant in every producer: no incoming weights, bias ``value``
    (with a ReLU, a value ≤ 0 is a dead channel)."""
    layers = {layer.name: layer for layer in spec.layers}
    for producer in groups_by_name(spec)[group].producers:
        weights = model.get_layer(producer).get_weights()
        for index, axis in OUTPUT_AXES[layers[producer].type].items():
            if index >= len(weights):
                continue
            if weights[index].ndim == 1:
                weights[index][list(channels)] = value
            else:
                moved = np.moveaxis(weights[index], axis, 0)  # a view: writes reach the kernel
                moved[list(channels)] = 0.0
        model.get_layer(producer).set_weights(weights)


def constant_plans(
    model: keras.Model, spec: ModelSpec, x: np.ndarray, groups: Sequence[str] | None = None
) -> dict[str, LayerPlan]:
    """Remove every channel measured constant at all of its group's probes (never a whole group)."""
    names = list(spec.prunable_names() if groups is None else groups)
    probes = measure_probes(model, spec, names, x, batch_size=16)
    by_name = groups_by_name(spec)
    plans: dict[str, LayerPlan] = {}
    for name, measured in probes.items():
        constant = np.flatnonzero(constant_units(combine(measured), 1e-6))
        if not 0 < len(constant) < measured[0].units:
            continue
        at_probes: Mapping[str, Mapping[int, float]] = {
            probe: {int(u): float(stats.mean[u]) for u in constant}
            for probe, stats in zip(by_name[name].probes, measured, strict=True)
        }
        plans[name] = LayerPlan(
            remove=constant.tolist(),
            constants=at_probes[by_name[name].probes[0]],
            probe_constants=at_probes,
        )
    return plans
