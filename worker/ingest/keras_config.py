"""A .keras file's ``config.json`` read as plain data, before Keras sees it.

Every serialized object in the config (a dict with ``class_name``) must come from the ``keras`` namespace
(``module`` ``keras`` or ``keras.…``) without a ``registered_name`` of its own (custom objects carry one);
layers must be of an allow-listed class; ``Lambda`` and anything that carries code are refused by name. The
error names the layer the object sits in, so a user knows what to rewrite.
"""

from __future__ import annotations

import json
from typing import Any

from worker.ingest.errors import Refused
from worker.ingest.limits import IngestLimits

#: Models a .keras file may hold (the top-level ``class_name``).
MODEL_CLASSES = frozenset({"Sequential", "Functional"})
#: Keras layers an uploaded model may use: pure tensor operations with weights or none, no code.
ALLOWED_LAYERS = frozenset(
    {
        "InputLayer",
        "Dense",
        "Conv2D",
        "Conv2DTranspose",
        "DepthwiseConv2D",
        "SeparableConv2D",
        "BatchNormalization",
        "MaxPooling2D",
        "AveragePooling2D",
        "GlobalAveragePooling2D",
        "GlobalMaxPooling2D",
        "Flatten",
        "Reshape",
        "Dropout",
        "SpatialDropout2D",
        "Activation",
        "ReLU",
        "Softmax",
        "Add",
        "Multiply",
        "Concatenate",
        "ZeroPadding2D",
        "UpSampling2D",
        "LeakyReLU",
        *MODEL_CLASSES,
    }
)
#: Classes that run code or load other files: refused wherever they appear.
DENIED_CLASSES = frozenset(
    {"Lambda", "TFSMLayer", "__lambda__", "function", "TorchModuleWrapper", "JaxLayer"}
)
#: Keras's own markers for values that are not objects (tensors in a functional graph, tuples).
VALUE_MARKERS = frozenset({"__keras_tensor__", "__tuple__"})
#: Deepest nesting a config may have (a hand-made config nested deeper is refused, not recursed into).
MAX_DEPTH = 64


def in_keras(module: Any) -> bool:
    """Whether a serialized object's ``module`` is Keras itself."""
    return isinstance(module, str) and (module == "keras" or module.startswith("keras."))


def _is_layer(module: Any) -> bool:
    return isinstance(module, str) and (module == "keras.layers" or ".layers." in module)


def parse_config(text: bytes, limits: IngestLimits) -> dict[str, Any]:
    """``config.json`` as data, refused unless it is a Sequential or Functional model of allowed layers.

    Args:
        text: the entry's bytes.
        limits: ``max_layers``.

    Returns:
        The parsed config.

    Raises:
        Refused: not JSON, not a Keras model, too many layers, or an object outside the allow-list
            (the message names the layer and its class).
    """
    try:
        config = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise Refused(f"the .keras file's config.json is not JSON ({exc})") from None
    if not isinstance(config, dict) or config.get("class_name") not in MODEL_CLASSES:
        kind = config.get("class_name") if isinstance(config, dict) else type(config).__name__
        raise Refused(f"the .keras file holds {kind!r}, not a Keras Sequential or Functional model")
    layers = config.get("config", {}).get("layers") if isinstance(config.get("config"), dict) else None
    if not isinstance(layers, list) or not layers:
        raise Refused("the .keras file's model has no layers")
    if len(layers) > limits.max_layers:
        raise Refused(f"the model has {len(layers)} layers; at most {limits.max_layers} are allowed")
    check_objects(config, layer="(model)", depth=0)
    return config


def _layer_name(node: dict[str, Any], fallback: str) -> str:
    config = node.get("config")
    name = config.get("name") if isinstance(config, dict) else None
    return name if isinstance(name, str) else fallback


def check_objects(node: Any, layer: str, depth: int) -> None:
    """Refuse any serialized object in ``node`` that is not Keras's own and allowed.

    Args:
        node: a part of the config.
        layer: the name of the layer ``node`` sits in (for messages).
        depth: how deep ``node`` is.

    Raises:
        Refused: naming the layer and what is wrong with it.
    """
    if depth > MAX_DEPTH:
        raise Refused(f"layer '{layer}': the config is nested deeper than {MAX_DEPTH} levels")
    if isinstance(node, list):
        for item in node:
            check_objects(item, layer, depth + 1)
        return
    if not isinstance(node, dict):
        return
    class_name = node.get("class_name")
    if class_name is not None:
        module = node.get("module")
        if _is_layer(module) or class_name in ALLOWED_LAYERS or class_name in DENIED_CLASSES:
            layer = _layer_name(node, layer)
        _check_object(node, class_name, module, layer)
    for key, value in node.items():
        if key == "layers" and isinstance(value, list):
            for item in value:  # each item is a layer, whatever it claims to be: name it
                name = _layer_name(item, layer) if isinstance(item, dict) else layer
                check_objects(item, name, depth + 1)
        elif key not in ("class_name", "module", "registered_name"):
            check_objects(value, layer, depth + 1)


def _check_object(node: dict[str, Any], class_name: Any, module: Any, layer: str) -> None:
    if not isinstance(class_name, str):
        raise Refused(f"layer '{layer}': a class_name that is not text ({class_name!r})")
    if class_name in VALUE_MARKERS and module is None:
        return
    if class_name in DENIED_CLASSES:
        raise Refused(
            f"layer '{layer}': {class_name} carries code and is refused; "
            "rewrite it with standard Keras layers"
        )
    if not in_keras(module):
        raise Refused(
            f"layer '{layer}': class {class_name!r} comes from module {module!r}, outside Keras; "
            "custom objects are refused"
        )
    registered = node.get("registered_name")
    if registered not in (None, class_name):
        raise Refused(
            f"layer '{layer}': {class_name!r} is registered as {registered!r}, a custom object; "
            "custom objects are refused"
        )
    if _is_layer(module) and class_name not in ALLOWED_LAYERS:
        raise Refused(
            f"layer '{layer}': the Keras layer class {class_name!r} is not allowed in uploads "
            f"(allowed: {', '.join(sorted(ALLOWED_LAYERS))})"
        )
