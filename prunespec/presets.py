"""The named models of the papers (the layer language's presets), with a line describing each."""

from __future__ import annotations

from typing import Any

from prunespec.layers import ModelSpec


def _preset_layers() -> dict[str, dict[str, Any]]:
    return {
        "sum-mlp": {
            "input_shape": [2],
            "layers": [
                {"type": "dense", "name": "hidden", "units": 1000, "activation": "relu"},
                {"type": "dense", "name": "out", "units": 1},
            ],
        },
        "lenet-300-100": {
            "input_shape": [784],
            "layers": [
                {"type": "dense", "name": "fc1", "units": 300, "activation": "relu"},
                {"type": "dense", "name": "fc2", "units": 100, "activation": "relu"},
                {"type": "dense", "name": "fc3", "units": 10},
            ],
        },
        "lenet-5": {
            "input_shape": [28, 28, 1],
            "layers": [
                {"type": "conv2d", "name": "conv1", "filters": 20, "kernel_size": 5},
                {"type": "max_pool", "name": "pool1", "pool_size": 2},
                {"type": "conv2d", "name": "conv2", "filters": 50, "kernel_size": 5},
                {"type": "max_pool", "name": "pool2", "pool_size": 2},
                {"type": "flatten", "name": "flatten"},
                {"type": "dense", "name": "ip1", "units": 500, "activation": "relu"},
                {"type": "dense", "name": "ip2", "units": 10},
            ],
        },
        "mnist-autoencoder": {
            "input_shape": [28, 28, 1],
            "layers": [
                {
                    "type": "conv2d",
                    "name": "enc1",
                    "filters": 32,
                    "kernel_size": 3,
                    "strides": 2,
                    "padding": "same",
                },
                {"type": "batch_norm", "name": "enc1_bn"},
                {"type": "activation", "name": "enc1_relu", "activation": "relu"},
                {
                    "type": "conv2d",
                    "name": "enc2",
                    "filters": 64,
                    "kernel_size": 3,
                    "strides": 2,
                    "padding": "same",
                },
                {"type": "batch_norm", "name": "enc2_bn"},
                {"type": "activation", "name": "enc2_relu", "activation": "relu"},
                {
                    "type": "conv2d_transpose",
                    "name": "dec1",
                    "filters": 32,
                    "kernel_size": 3,
                    "strides": 2,
                    "padding": "same",
                },
                {"type": "batch_norm", "name": "dec1_bn"},
                {"type": "activation", "name": "dec1_relu", "activation": "relu"},
                {
                    "type": "conv2d_transpose",
                    "name": "dec2",
                    "filters": 1,
                    "kernel_size": 3,
                    "strides": 2,
                    "padding": "same",
                },
                {"type": "batch_norm", "name": "dec2_bn"},
                {"type": "activation", "name": "dec2_tanh", "activation": "tanh"},
            ],
        },
    }


PRESET_DESCRIPTIONS: dict[str, str] = {
    "sum-mlp": "Çallı's summation net: 2 → Dense 1000 ReLU → Dense 1 (optimum: one hidden unit)",
    "lenet-300-100": "LeNet-300-100: 784 → 300 ReLU → 100 ReLU → 10",
    "lenet-5": "Caffe LeNet-5 as in Hu et al.: conv 20 5×5 → pool → conv 50 5×5 → pool → 500 ReLU → 10",
    "mnist-autoencoder": "Çallı's conv autoencoder 1-32-64-32-1 with BatchNorm, ReLU and a tanh output",
}


def preset_names() -> list[str]:
    return list(_preset_layers())


def preset(name: str) -> ModelSpec:
    """The named preset model.

    Raises:
        ValueError: the name is not a preset (the message lists the presets).
    """
    layers = _preset_layers()
    if name not in layers:
        raise ValueError(f"unknown preset '{name}'; presets: {sorted(layers)}")
    return ModelSpec.model_validate(layers[name])
