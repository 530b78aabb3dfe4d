"""Real Keras applications pruned through their dependency groups: planted dead channels removed exactly.

MobileNetV2 (inverted residuals, depthwise convolutions, ReLU6) and ResNet50 (bottleneck blocks with
projection shortcuts, zero padding, max pooling), both as ``keras.applications`` builds them with
``weights=None`` (offline), read into the model language, rebuilt, and pruned.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import keras
import numpy as np
import pytest
from graph_cases import constant_plans

from prunespec.groups import consumers_by_name, dependency_groups
from prunespec.layers import ModelSpec
from worker.engine.build import build_model, set_layer_weights
from worker.engine.from_keras import read_model
from worker.engine.surgery import prune


def _mobilenet_v2() -> keras.Model:
    return keras.applications.MobileNetV2(weights=None, alpha=0.35, input_shape=(32, 32, 3), classes=10)


def _resnet50() -> keras.Model:
    return keras.applications.ResNet50(
        weights=None, input_shape=(32, 32, 3), classes=10, classifier_activation=None
    )


@pytest.fixture
def float_type() -> Iterator[Callable[[str], None]]:
    """Sets the float type of the layers Keras makes during one test, and restores it after (Keras keeps
    the global dtype policy it made first, so ``set_floatx`` alone would not reach new layers)."""
    before_floatx, before_policy = keras.config.floatx(), keras.config.dtype_policy()

    def use(dtype: str) -> None:
        keras.config.set_floatx(dtype)
        keras.config.set_dtype_policy(dtype)

    yield use
    keras.config.set_floatx(before_floatx)
    keras.config.set_dtype_policy(before_policy)


def _plant_dead_channels(model: keras.Model, spec: ModelSpec, rng: np.random.Generator) -> dict[str, int]:
    """One dead channel in every prunable group: no incoming weights, and a batch norm that shifts it
    below 0 (so the ReLU after it, or the join it feeds, sees a constant). Returns group -> channel."""
    readers = consumers_by_name(spec)
    layers = {layer.name: layer for layer in spec.layers}
    planted: dict[str, int] = {}
    for group in dependency_groups(spec):
        if group.fixed is not None:
            continue
        channel = int(rng.integers(group.width))
        planted[group.name] = channel
        for producer in group.producers:
            weights = model.get_layer(producer).get_weights()
            weights[0][..., channel] = 0.0
            model.get_layer(producer).set_weights(weights)
            norm = [r for r in readers[producer] if layers[r].type == "batch_norm"]
            if norm:
                gamma, beta, mean, variance = model.get_layer(norm[0]).get_weights()
                beta[channel], mean[channel] = -4.0, 0.0
                model.get_layer(norm[0]).set_weights([gamma, beta, mean, variance])
    return planted


# Both run in float64. ResNet50's 50 layers, whose batch norms see 8 examples at 1×1 in the last stage,
# amplify float32 rounding (sums over fewer channels) to ~1e-3 in its logits; MobileNetV2 folds ~700
# constant channels into biases, and float32 rounding of those sums alone moves its logits by 0.6–1.6e-5
# depending on the last bit of each measured constant. In float64 the same surgery stays within 1e-5,
# which is what shows it exact.
@pytest.mark.parametrize(
    ("application", "min_groups", "dtype"),
    [
        pytest.param(_mobilenet_v2, 10, "float64", id="MobileNetV2"),
        pytest.param(_resnet50, 30, "float64", id="ResNet50", marks=pytest.mark.slow),
    ],
)
def test_a_keras_application_loses_planted_dead_channels_with_outputs_kept(
    application: Callable[[], keras.Model], min_groups: int, dtype: str, float_type: Callable[[str], None]
) -> None:
    float_type(dtype)
    keras.utils.set_random_seed(11)
    rng = np.random.default_rng(11)
    read = read_model(application())
    spec = read.spec
    model = build_model(spec)
    set_layer_weights(model, read.weights)
    x = rng.uniform(-1, 1, (8, 32, 32, 3)).astype(dtype)
    # untrained, the signal fades through the blocks; batch norms set to the batch's statistics keep it
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    model(x, training=True)
    planted = _plant_dead_channels(model, spec, rng)
    assert len(planted) >= min_groups
    plans = constant_plans(model, spec, x)
    assert all(channel in plans[name].remove for name, channel in planted.items())

    pruned, pruned_spec = prune(model, spec, plans)

    assert pruned.count_params() < model.count_params()
    np.testing.assert_allclose(pruned.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    widths = pruned_spec.widths()
    assert all(widths[name] == spec.widths()[name] - len(plan.remove) for name, plan in plans.items())
