"""Magnitude connection pruning: exact masks, and zeros that stay zero through fine-tuning."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from prunespec.spec import TrainingSpec
from worker.engine.connections import (
    apply_masks,
    kernel_sparsity,
    magnitude_mask,
    magnitude_masks,
    prune_connections,
    weighted_layer_names,
)

TRAINING = TrainingSpec(optimizer="adam", learning_rate=0.01, batch_size=32, epochs=2, loss="mse")


def _model(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((4,), name="input")
    hidden = keras.layers.Dense(16, activation="relu", name="hidden")(inputs)
    return keras.Model(inputs, keras.layers.Dense(1, name="out")(hidden))


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.random((256, 4), dtype=np.float32)
    return x, x.sum(axis=1, keepdims=True)


def test_magnitude_mask_drops_exactly_the_smallest_weights() -> None:
    kernel = np.array([[0.5, -0.1], [2.0, -3.0], [0.05, 1.0]], dtype=np.float32)
    mask = magnitude_mask(kernel, 0.5)
    np.testing.assert_array_equal(mask, [[False, False], [True, True], [False, True]])


def test_magnitude_mask_breaks_ties_by_position() -> None:
    mask = magnitude_mask(np.ones((2, 5), dtype=np.float32), 0.3)
    np.testing.assert_array_equal(mask.ravel(), [False, False, False] + [True] * 7)


def test_zero_sparsity_keeps_every_weight() -> None:
    assert magnitude_mask(np.random.default_rng(0).normal(size=(3, 3)), 0.0).all()


def test_masks_cover_every_weighted_layer_or_the_named_ones() -> None:
    model = _model()
    assert weighted_layer_names(model) == ["hidden", "out"]
    assert set(magnitude_masks(model, 0.5)) == {"hidden", "out"}
    masks = magnitude_masks(model, {"hidden": 0.25})
    assert list(masks) == ["hidden"]
    assert masks["hidden"].shape == (4, 16)
    assert int((~masks["hidden"]).sum()) == 16


@pytest.mark.parametrize("sparsity", [{"nope": 0.5}, {"hidden": 1.0}, {"hidden": -0.1}])
def test_bad_targets_are_refused(sparsity: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        magnitude_masks(_model(), sparsity)


def test_apply_masks_zeroes_kernels_and_leaves_biases() -> None:
    model = _model()
    model.get_layer("hidden").bias.assign(np.ones(16, dtype=np.float32))
    apply_masks(model, magnitude_masks(model, {"hidden": 0.5}))
    assert kernel_sparsity(model) == {"hidden": 0.5, "out": 0.0}
    np.testing.assert_array_equal(model.get_layer("hidden").bias.numpy(), np.ones(16))


def test_fine_tuning_keeps_pruned_weights_at_zero_and_trains_the_rest() -> None:
    model = _model()
    x, y = _data()
    before = {name: model.get_layer(name).kernel.numpy().copy() for name in ("hidden", "out")}
    result = prune_connections(model, {"hidden": 0.75, "out": 0.5}, x, y, TRAINING)
    assert result.model is model
    assert result.target == {"hidden": 0.75, "out": 0.5}
    assert result.sparsity == {"hidden": 0.75, "out": 0.5}
    for name, mask in result.masks.items():
        kernel = model.get_layer(name).kernel.numpy()
        assert np.all(kernel[~mask] == 0.0)
        assert not np.allclose(kernel[mask], before[name][mask])  # the survivors were trained
        assert model.get_layer(name).kernel.constraint is None  # the mask does not outlive the call
    assert len(result.history["loss"]) == TRAINING.epochs


def test_snapshot_fine_tuning_changes_only_biases() -> None:
    model = _model()
    x, y = _data()
    bias_before = model.get_layer("hidden").bias.numpy().copy()
    result = prune_connections(model, 0.5, x, y, TRAINING, snapshot=True)
    for name, mask in result.masks.items():
        layer = model.get_layer(name)
        kernel = layer.kernel.numpy()
        assert np.all(kernel[~mask] == 0.0)
        assert layer.kernel.trainable  # restored after fine-tuning
    pruned_only = magnitude_masks(_model(), 0.5)["hidden"] * _model().get_layer("hidden").kernel.numpy()
    np.testing.assert_allclose(model.get_layer("hidden").kernel.numpy(), pruned_only)
    assert not np.allclose(model.get_layer("hidden").bias.numpy(), bias_before)


def test_no_epochs_only_masks() -> None:
    model = _model()
    x, y = _data()
    result = prune_connections(model, 0.5, x, y, TRAINING, epochs=0)
    assert result.history == {}
    assert result.sparsity == {"hidden": 0.5, "out": 0.5}
    with pytest.raises(ValueError, match="epochs"):
        prune_connections(model, 0.5, x, y, TRAINING, epochs=-1)
