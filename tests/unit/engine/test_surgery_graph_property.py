"""Property: on random small graphs, removing every channel that is constant across its group keeps
the outputs within 1e-5."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from graph_cases import constant_plans, plant, randomise
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prunespec.groups import dependency_groups
from prunespec.layers import ModelSpec
from worker.engine.build import build_model
from worker.engine.surgery import prune


@st.composite
def graphs(draw: st.DrawFn) -> ModelSpec:
    """A stem convolution, one to three blocks (residual add, concatenation, depthwise, plain
    convolution), a global pool and a dense head."""
    layers: list[dict[str, Any]] = []
    count = [0]

    def add(layer: dict[str, Any]) -> str:
        count[0] += 1
        name = f"{layer['type'][:4]}{count[0]}"
        layers.append({**layer, "name": name})
        return name

    def norm_relu(source: str) -> str:
        if draw(st.booleans()):
            source = add({"type": "batch_norm", "inputs": [source]})
        return add({"type": "activation", "activation": "relu", "inputs": [source]})

    width = draw(st.integers(2, 4))
    x = norm_relu(add({"type": "conv2d", "filters": width, "kernel_size": 1, "inputs": ["input"]}))
    for _ in range(draw(st.integers(1, 3))):
        block = draw(st.sampled_from(["residual", "concat", "depthwise", "conv"]))
        if block == "residual":
            branch = add({"type": "conv2d", "filters": width, "kernel_size": 1, "inputs": [x]})
            if draw(st.booleans()):
                branch = add({"type": "batch_norm", "inputs": [branch]})
            x = add({"type": "add", "inputs": [x, branch]})
            if draw(st.booleans()):
                x = add({"type": "activation", "activation": "relu", "inputs": [x]})
        elif block == "concat":
            left, right = draw(st.integers(1, 3)), draw(st.integers(1, 3))
            a = add({"type": "conv2d", "filters": left, "kernel_size": 1, "inputs": [x]})
            b = add({"type": "conv2d", "filters": right, "kernel_size": 1, "inputs": [x]})
            x = norm_relu(add({"type": "concatenate", "inputs": [a, b]}))
            width = left + right
        elif block == "depthwise":
            padding = draw(st.sampled_from(["same", "valid"]))
            x = norm_relu(
                add({"type": "depthwise_conv2d", "kernel_size": 3, "padding": padding, "inputs": [x]})
            )
        else:
            width = draw(st.integers(2, 4))
            x = norm_relu(add({"type": "conv2d", "filters": width, "kernel_size": 1, "inputs": [x]}))
    x = add({"type": draw(st.sampled_from(["global_avg_pool", "global_max_pool"])), "inputs": [x]})
    x = add({"type": "dense", "units": draw(st.integers(2, 4)), "activation": "relu", "inputs": [x]})
    add({"type": "dense", "units": 2, "inputs": [x]})
    return ModelSpec.model_validate({"input_shape": [7, 7, 2], "layers": layers})


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs(), st.integers(0, 2**16), st.data())
def test_removing_constant_channels_of_any_graph_keeps_outputs(
    spec: ModelSpec, seed: int, data: st.DataObject
) -> None:
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_model(spec)
    randomise(model, rng)
    for group in dependency_groups(spec):
        if group.fixed is None and group.width > 1:
            channels = data.draw(
                st.lists(st.integers(0, group.width - 1), unique=True, max_size=group.width - 1)
            )
            plant(model, spec, group.name, channels, data.draw(st.sampled_from([-1.0, 0.5])))
    x = rng.normal(size=(24, 7, 7, 2)).astype("float32")
    plans = constant_plans(model, spec, x)

    pruned, pruned_spec = prune(model, spec, plans)

    for name, plan in plans.items():
        assert pruned_spec.widths()[name] == spec.widths()[name] - len(plan.remove)
    np.testing.assert_allclose(pruned.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
