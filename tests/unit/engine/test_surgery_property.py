"""Property: removing dead units, anywhere, never changes a model's outputs (within 1e-5)."""

from __future__ import annotations

import keras
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prunespec.layers import ModelSpec
from worker.engine.build import build_model
from worker.engine.stats import measure
from worker.engine.surgery import LayerPlan, prune


@st.composite
def dead_unit_models(draw: st.DrawFn) -> tuple[ModelSpec, dict[str, list[int]], int]:
    """A small random architecture and, per prunable layer, the units to kill (never all)."""
    conv = draw(st.booleans())
    layers: list[dict] = []
    if conv:
        for i in range(draw(st.integers(1, 2))):
            layers.append(
                {
                    "type": draw(st.sampled_from(["conv2d", "conv2d_transpose"])) if i else "conv2d",
                    "name": f"c{i}",
                    "filters": draw(st.integers(2, 5)),
                    "kernel_size": draw(st.sampled_from([1, 3])),
                    "padding": draw(st.sampled_from(["same", "valid"])),
                }
            )
            if draw(st.booleans()):
                layers.append({"type": "batch_norm", "name": f"c{i}_bn"})
            layers.append({"type": "activation", "name": f"c{i}_relu", "activation": "relu"})
        if draw(st.booleans()):
            layers.append({"type": "max_pool", "name": "pool", "pool_size": 2, "padding": "same"})
        layers.append({"type": "flatten", "name": "flat"})
        input_shape = [6, 6, 2]
    else:
        input_shape = [3]
    for i in range(draw(st.integers(1, 2))):
        layers.append(
            {"type": "dense", "name": f"d{i}", "units": draw(st.integers(2, 6)), "activation": "relu"}
        )
    layers.append({"type": "dense", "name": "out", "units": 2, "use_bias": draw(st.booleans())})
    spec = ModelSpec.model_validate({"input_shape": input_shape, "layers": layers})
    widths = spec.widths()
    dead = {}
    for name in spec.prunable_names():
        units = draw(st.lists(st.integers(0, widths[name] - 1), unique=True, max_size=widths[name] - 1))
        dead[name] = sorted(units)
    return spec, dead, draw(st.integers(0, 2**16))


def _kill(model: keras.Model, spec: ModelSpec, dead: dict[str, list[int]]) -> None:
    """Make the chosen units output exactly 0 after their ReLU."""
    names = spec.layer_names()
    for name, units in dead.items():
        if not units:
            continue
        weights = model.get_layer(name).get_weights()
        if spec.layers[names.index(name)].type == "conv2d_transpose":
            weights[0][:, :, units, :] = 0.0  # kernel (kh, kw, out, in)
        else:
            weights[0][..., units] = 0.0  # dense and conv2d: units on the last axis
        weights[1][units] = -1.0
        model.get_layer(name).set_weights(weights)
        after = names[names.index(name) + 1]
        if after.endswith("_bn"):  # BatchNorm would shift the dead value: push it below zero
            gamma, beta, mean, variance = model.get_layer(after).get_weights()
            beta[units] = -5.0
            mean[units] = 0.0
            model.get_layer(after).set_weights([gamma, beta, mean, variance])


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dead_unit_models())
def test_removing_dead_units_keeps_outputs(case: tuple[ModelSpec, dict[str, list[int]], int]) -> None:
    spec, dead, seed = case
    keras.utils.set_random_seed(seed)
    model = build_model(spec)
    _kill(model, spec, dead)
    x = np.random.default_rng(seed).normal(size=(24, *spec.input_shape)).astype("float32")
    stats = measure(model, spec, spec.prunable_names(), x, batch_size=8)
    plans = {}
    for name, layer in stats.items():
        silent = np.flatnonzero((layer.maximum == 0) & (layer.minimum == 0))
        assert set(dead[name]) <= set(silent.tolist())
        if 0 < len(silent) < layer.units:
            plans[name] = LayerPlan(remove=silent.tolist(), constants={int(u): 0.0 for u in silent})

    pruned, pruned_spec = prune(model, spec, plans)

    for name, plan in plans.items():
        assert pruned_spec.widths()[name] == spec.widths()[name] - len(plan.remove)
    np.testing.assert_allclose(pruned.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
