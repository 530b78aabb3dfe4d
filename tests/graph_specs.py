"""Tiny graph specs shared by the group and surgery tests (pure: no TensorFlow)."""

from __future__ import annotations

from typing import Any

from prunespec.layers import ModelSpec


def model_spec(input_shape: list[int], layers: list[dict[str, Any]]) -> ModelSpec:
    """A validated model from an input shape and layer dicts."""
    return ModelSpec.model_validate({"input_shape": input_shape, "layers": layers})


def conv(name: str, filters: int, **extra: Any) -> dict[str, Any]:
    """A 1×1 convolution layer dict."""
    return {"type": "conv2d", "name": name, "filters": filters, "kernel_size": 1, **extra}


def relu(name: str, **extra: Any) -> dict[str, Any]:
    """A ReLU activation layer dict."""
    return {"type": "activation", "name": name, "activation": "relu", **extra}


#: stem → (conv, bn, relu, conv, bn) + stem → relu → global pool → dense, on a (6, 6, 2) input.
RESIDUAL: list[dict[str, Any]] = [
    conv("stem", 4),
    {"type": "batch_norm", "name": "stem_bn"},
    relu("stem_relu"),
    conv("c1", 3),
    {"type": "batch_norm", "name": "c1_bn"},
    relu("c1_relu"),
    conv("c2", 4),
    {"type": "batch_norm", "name": "c2_bn"},
    {"type": "add", "name": "sum", "inputs": ["stem_relu", "c2_bn"]},
    relu("sum_relu"),
    {"type": "global_avg_pool", "name": "pool"},
    {"type": "dense", "name": "out", "units": 3},
]
