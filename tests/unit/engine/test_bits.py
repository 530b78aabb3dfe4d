"""Representation bits: the nominal convention, and what a converted flatbuffer really stores."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from converted_presets import ConvertedPresets

from prunespec.costs import model_cost
from prunespec.layers import ModelSpec
from prunespec.presets import preset, preset_names
from worker.engine.bits import (
    DYNAMIC_MIN_ELEMENTS,
    FORMATS,
    SCALE_BITS,
    ZERO_POINT_BITS,
    ModelBits,
    nominal_bits,
    stored_bits,
)
from worker.engine.build import build_model
from worker.engine.sparse_bench import sparse_kernel
from worker.engine.tflite import convert

GROUP = SCALE_BITS + ZERO_POINT_BITS


def _with_nonzero_biases(model: keras.Model) -> keras.Model:
    """All-zero biases would be dropped by the converter; give every bias a value."""
    rng = np.random.default_rng(0)
    for layer in model.layers:
        weights = layer.get_weights()
        if weights:
            layer.set_weights(
                [w if w.ndim > 1 else rng.uniform(0.5, 1.5, w.shape).astype(np.float32) for w in weights]
            )
    return model


def _constants(bits: ModelBits) -> int:
    return sum(t.total_bits for t in bits.tensors if t.role == "constant")


@pytest.mark.parametrize("name", preset_names())
def test_float_formats_take_their_width_per_parameter(name: str) -> None:
    spec = preset(name)
    params = model_cost(spec).params
    for fmt, width in (("float32", 32), ("float16", 16)):
        bits = nominal_bits(spec, fmt)
        assert bits.params == params
        assert bits.total_bits == width * params
        assert bits.overhead_bits == 0
        assert bits.bits_per_param == width


def test_int8_full_counts_int32_biases_and_a_group_per_channel() -> None:
    spec = ModelSpec.model_validate({"input_shape": [3], "layers": [{"type": "dense", "units": 2}]})
    bits = nominal_bits(spec, "int8_full")
    kernel, bias = bits.tensors
    assert (kernel.role, kernel.value_bits, kernel.quantization_groups) == ("kernel", 6 * 8, 2)
    assert (bias.role, bias.value_bits, bias.quantization_groups) == ("bias", 2 * 32, 2)
    assert bits.total_bits == 6 * 8 + 2 * 32 + 4 * GROUP


def _threshold_spec() -> ModelSpec:
    """A kernel of exactly the threshold's size ("big") and one just below it ("small")."""
    return ModelSpec.model_validate(
        {
            "input_shape": [32],
            "layers": [
                # relu keeps the converter from folding big's bias into small's
                {"type": "dense", "name": "big", "units": DYNAMIC_MIN_ELEMENTS // 32, "activation": "relu"},
                {"type": "dense", "name": "small", "units": 31},
            ],
        }
    )


def test_int8_dynamic_quantises_only_large_kernels() -> None:
    spec = _threshold_spec()
    by_name = {(t.layer, t.role): t for t in nominal_bits(spec, "int8_dynamic").tensors}
    assert by_name[("big", "kernel")].value_bits == 8 * DYNAMIC_MIN_ELEMENTS
    assert by_name[("big", "kernel")].quantization_groups == 32
    assert by_name[("small", "kernel")].value_bits == 32 * 32 * 31
    assert by_name[("small", "kernel")].quantization_groups == 0
    assert by_name[("big", "bias")].value_bits == 32 * 32


def test_the_dynamic_threshold_is_the_converters() -> None:
    spec = _threshold_spec()
    stored = stored_bits(convert(_with_nonzero_biases(build_model(spec)), "int8_dynamic"))
    assert _constants(stored) == nominal_bits(spec, "int8_dynamic").total_bits


@pytest.mark.parametrize("fmt", FORMATS)
def test_nominal_bits_equal_what_the_flatbuffer_stores(converted_presets: ConvertedPresets, fmt: str) -> None:
    model = converted_presets.models["lenet-300-100"][0]  # random non-zero biases
    stored = stored_bits(converted_presets.flatbuffer("lenet-300-100", fmt))
    assert _constants(stored) == nominal_bits(model, fmt).total_bits


def test_int8_full_stores_activation_groups_beside_the_parameters(
    converted_presets: ConvertedPresets,
) -> None:
    stored = stored_bits(converted_presets.flatbuffer("lenet-300-100", "int8_full"))
    activations = [t for t in stored.tensors if t.role == "activation"]
    assert activations and all(t.quantization_groups == 1 for t in activations)


def test_batch_norm_counts_four_vectors_per_channel() -> None:
    spec = preset("mnist-autoencoder")
    entries = [t for t in nominal_bits(spec, "float32").tensors if t.role == "batch_norm"]
    assert [t.elements for t in entries] == [4 * 32, 4 * 64, 4 * 32, 4 * 1]


def test_a_keras_model_counts_as_its_spec() -> None:
    spec = preset("lenet-5")
    assert nominal_bits(build_model(spec), "int8_full") == nominal_bits(spec, "int8_full")


def test_sparse_storage_of_a_pruned_kernel_takes_fewer_bits() -> None:
    kernel = sparse_kernel(784, 300, 0.01, np.random.default_rng(0))
    inputs = keras.Input((784,), name="input")
    layer = keras.layers.Dense(300, use_bias=False)
    model = keras.Model(inputs, layer(inputs))
    layer.set_weights([kernel])
    dense = stored_bits(convert(model, "float32"))
    sparse = stored_bits(convert(model, "float32", sparse_weights=True))
    assert dense.total_bits == 32 * kernel.size
    nonzeros = int(np.count_nonzero(kernel))
    assert 32 * nonzeros < sparse.total_bits < dense.total_bits / 10
    assert sparse.params == dense.params == kernel.size


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="float16"):
        nominal_bits(preset("sum-mlp"), "int4")


def test_summary_is_json_ready() -> None:
    summary = nominal_bits(preset("sum-mlp"), "int8_dynamic").summary()
    text = json.dumps(summary)
    assert summary["total_bits"] == summary["value_bits"] + summary["overhead_bits"]
    assert "hidden" in text
