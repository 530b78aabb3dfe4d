"""The named models of the papers (the layer language's presets), with a line describing each."""

from __future__ import annotations

from typing import Any

from prunespec.layers import ModelSpec


def _conv_bn(name: str, filters: int, kernel: int, strides: int = 1, **extra: Any) -> list[dict[str, Any]]:
    """A bias-free convolution and its batch norm (``<name>``, ``<name>_bn``)."""
    conv = {
        "type": "conv2d",
        "name": name,
        "filters": filters,
        "kernel_size": kernel,
        "strides": strides,
        "padding": "same",
        "use_bias": False,
        **extra,
    }
    return [conv, {"type": "batch_norm", "name": f"{name}_bn"}]


def _basic_block(name: str, source: str, filters: int, strides: int, project: bool) -> list[dict[str, Any]]:
    """A ResNet basic block: two 3x3 convolutions with batch norm, added to the (projected) input."""
    layers = [
        *_conv_bn(f"{name}_conv1", filters, 3, strides, inputs=[source]),
        {"type": "activation", "name": f"{name}_relu1", "activation": "relu"},
        *_conv_bn(f"{name}_conv2", filters, 3),
    ]
    shortcut = source
    if project:
        layers += _conv_bn(f"{name}_proj", filters, 1, strides, inputs=[source])
        shortcut = f"{name}_proj_bn"
    return [
        *layers,
        {"type": "add", "name": f"{name}_add", "inputs": [shortcut, f"{name}_conv2_bn"]},
        {"type": "activation", "name": f"{name}_out", "activation": "relu"},
    ]


def _resnet_mini(blocks: int = 3) -> dict[str, Any]:
    """ResNet-20-like: a 16-channel stem, three stages of basic blocks (16, 32, 64), a linear head.

    The stem has stride 2 (stages at 14x14, 7x7, 4x4): a quarter of the FLOPs of a stride-1 stem, so
    an epoch of 8,000 MNIST images trains in seconds on a CPU.
    """
    layers = [*_conv_bn("stem", 16, 3, 2), {"type": "activation", "name": "stem_relu", "activation": "relu"}]
    source = "stem_relu"
    for stage, filters in enumerate((16, 32, 64), start=1):
        for block in range(1, blocks + 1):
            first = block == 1 and stage > 1
            name = f"s{stage}b{block}"
            layers += _basic_block(name, source, filters, 2 if first else 1, project=first)
            source = f"{name}_out"
    layers += [
        {"type": "global_avg_pool", "name": "gap"},
        {"type": "dense", "name": "fc", "units": 10},
    ]
    return {"input_shape": [28, 28, 1], "layers": layers}


def _inverted_residual(
    name: str, source: str, expand: int, out: int, strides: int, residual: bool, excite: int = 0
) -> list[dict[str, Any]]:
    """MobileNetV2's block: 1x1 expand, 3x3 depthwise, optional squeeze-excitation, 1x1 linear project."""
    layers = [
        *_conv_bn(f"{name}_expand", expand, 1, inputs=[source]),
        {"type": "activation", "name": f"{name}_expand_relu", "activation": "relu6"},
        {
            "type": "depthwise_conv2d",
            "name": f"{name}_dw",
            "kernel_size": 3,
            "strides": strides,
            "padding": "same",
            "use_bias": False,
        },
        {"type": "batch_norm", "name": f"{name}_dw_bn"},
        {"type": "activation", "name": f"{name}_dw_relu", "activation": "relu6"},
    ]
    features = f"{name}_dw_relu"
    if excite:
        layers += [
            {"type": "global_avg_pool", "name": f"{name}_se_squeeze", "keepdims": True},
            {
                "type": "conv2d",
                "name": f"{name}_se_reduce",
                "filters": excite,
                "kernel_size": 1,
                "activation": "relu",
            },
            {
                "type": "conv2d",
                "name": f"{name}_se_expand",
                "filters": expand,
                "kernel_size": 1,
                "activation": "sigmoid",
            },
            {"type": "multiply", "name": f"{name}_se_scale", "inputs": [features, f"{name}_se_expand"]},
        ]
        features = f"{name}_se_scale"
    layers += _conv_bn(f"{name}_project", out, 1, inputs=[features])
    if residual:
        layers.append({"type": "add", "name": f"{name}_add", "inputs": [source, f"{name}_project_bn"]})
    return layers


def _mobilenet_v2_mini() -> dict[str, Any]:
    """Inverted residual blocks with ReLU6, depthwise 3x3, residual adds and one squeeze-excitation."""
    layers = [*_conv_bn("stem", 16, 3), {"type": "activation", "name": "stem_relu", "activation": "relu6"}]
    # (name, expansion width, output channels, strides, squeeze-excitation width)
    blocks = [
        ("b1", 32, 16, 1, 0),
        ("b2", 64, 24, 2, 0),
        ("b3", 96, 24, 1, 24),
        ("b4", 96, 32, 2, 0),
        ("b5", 128, 32, 1, 0),
    ]
    source, channels = "stem_relu", 16
    for name, expand, out, strides, excite in blocks:
        residual = strides == 1 and out == channels
        layers += _inverted_residual(name, source, expand, out, strides, residual, excite)
        source, channels = (f"{name}_add" if residual else f"{name}_project_bn"), out
    layers += [
        *_conv_bn("head", 128, 1, inputs=[source]),
        {"type": "activation", "name": "head_relu", "activation": "relu6"},
        {"type": "global_avg_pool", "name": "gap"},
        {"type": "dense", "name": "fc", "units": 10},
    ]
    return {"input_shape": [28, 28, 1], "layers": layers}


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
        "resnet-mini": _resnet_mini(),
        "mobilenet-v2-mini": _mobilenet_v2_mini(),
    }


PRESET_DESCRIPTIONS: dict[str, str] = {
    "sum-mlp": "Çallı's summation net: 2 → Dense 1000 ReLU → Dense 1 (optimum: one hidden unit)",
    "lenet-300-100": "LeNet-300-100: 784 → 300 ReLU → 100 ReLU → 10",
    "lenet-5": "Caffe LeNet-5 as in Hu et al.: conv 20 5×5 → pool → conv 50 5×5 → pool → 500 ReLU → 10",
    "mnist-autoencoder": "Çallı's conv autoencoder 1-32-64-32-1 with BatchNorm, ReLU and a tanh output",
    "resnet-mini": (
        "ResNet-20-like for 28×28: 16-channel stride-2 stem, three stages of three basic blocks "
        "(16/32/64 channels, BatchNorm, projection shortcuts), global average pool → 10"
    ),
    "mobilenet-v2-mini": (
        "MobileNetV2-like for 28×28: five inverted residual blocks (1×1 expand → 3×3 depthwise → 1×1 "
        "project, BatchNorm, ReLU6, residual adds, one squeeze-excitation), 1×1 head 128 → 10"
    ),
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
