"""A real Keras application pruned through its dependency groups: MobileNetV2 with planted dead channels."""

from __future__ import annotations

import keras
import numpy as np
from graph_cases import constant_plans

from prunespec.groups import consumers_by_name, dependency_groups
from worker.engine.build import build_model, set_layer_weights
from worker.engine.from_keras import read_model
from worker.engine.surgery import prune


def test_mobilenet_v2_loses_planted_dead_channels_with_outputs_kept() -> None:
    keras.utils.set_random_seed(11)
    rng = np.random.default_rng(11)
    original = keras.applications.MobileNetV2(weights=None, alpha=0.35, input_shape=(32, 32, 3), classes=10)
    read = read_model(original)
    spec = read.spec
    model = build_model(spec)
    set_layer_weights(model, read.weights)
    x = rng.uniform(-1, 1, (8, 32, 32, 3)).astype("float32")
    # untrained, the signal fades through 17 blocks; batch norms set to the batch's statistics keep it
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    model(x, training=True)
    readers = consumers_by_name(spec)
    layers = {layer.name: layer for layer in spec.layers}
    planted: dict[str, int] = {}
    for group in dependency_groups(spec):
        if group.fixed is not None:
            continue
        channel = int(rng.integers(group.width))
        planted[group.name] = channel
        for producer in group.producers:  # no incoming weights, and a batch norm that shifts below 0
            weights = model.get_layer(producer).get_weights()
            weights[0][..., channel] = 0.0
            model.get_layer(producer).set_weights(weights)
            norm = [r for r in readers[producer] if layers[r].type == "batch_norm"]
            if norm:
                gamma, beta, mean, variance = model.get_layer(norm[0]).get_weights()
                beta[channel], mean[channel] = -4.0, 0.0
                model.get_layer(norm[0]).set_weights([gamma, beta, mean, variance])
    assert len(planted) >= 10
    plans = constant_plans(model, spec, x)
    assert all(channel in plans[name].remove for name, channel in planted.items())

    pruned, pruned_spec = prune(model, spec, plans)

    assert pruned.count_params() < model.count_params()
    np.testing.assert_allclose(pruned.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    widths = pruned_spec.widths()
    assert all(widths[name] == spec.widths()[name] - len(plan.remove) for name, plan in plans.items())
