"""An uploaded .keras file: the container, the config as data, then a safe-mode load and the model as a spec.

Imports Keras (and so TensorFlow) only inside :func:`load_checked`, after every check that needs no Keras
has passed; run it only in the ingest subprocess.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import Any

from worker.ingest.errors import Refused
from worker.ingest.keras_config import parse_config
from worker.ingest.limits import IngestLimits
from worker.ingest.zipcheck import check_zip

#: The entries a .keras file of allowed layers holds (no assets: no allowed layer has any).
KERAS_ENTRIES = frozenset({"config.json", "metadata.json", "model.weights.h5"})
#: Longest config.json or metadata.json read (bytes).
MAX_CONFIG_BYTES = 16 << 20
#: Bytes of an .h5 weights file beyond its float32 weights (its own structure).
H5_OVERHEAD_BYTES = 4 << 20


def check_container(path: Path, limits: IngestLimits) -> dict[str, Any]:
    """The parsed config of a .keras file whose container and config pass every check (no Keras needed).

    Raises:
        Refused: what is wrong, naming the entry or layer.
    """
    entries = {entry.filename: entry for entry in check_zip(path, limits, ".keras file")}
    unknown = sorted(set(entries) - KERAS_ENTRIES)
    if unknown:
        raise Refused(f"the .keras file has entries a Keras model of allowed layers does not: {unknown}")
    for needed in ("config.json", "model.weights.h5"):
        if needed not in entries:
            raise Refused(f"the .keras file has no {needed}; save the model with model.save('name.keras')")
    if entries["config.json"].file_size > MAX_CONFIG_BYTES:
        raise Refused(f"the .keras file's config.json is over {MAX_CONFIG_BYTES:,} bytes")
    most_weight_bytes = 8 * limits.max_parameters + H5_OVERHEAD_BYTES
    if entries["model.weights.h5"].file_size > most_weight_bytes:
        raise Refused(
            f"the model's weights take {entries['model.weights.h5'].file_size:,} bytes; this server allows "
            f"models of at most {limits.max_parameters:,} parameters"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            text = archive.read("config.json")
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise Refused(f"the .keras file's config.json cannot be read ({exc})") from None
    return parse_config(text, limits)


def _stored_weight_elements(path: Path) -> tuple[int, int]:
    """(arrays, elements) of the layer weights stored in a .keras file's model.weights.h5."""
    import h5py

    counts = [0, 0]
    with zipfile.ZipFile(path) as archive, archive.open("model.weights.h5") as raw, h5py.File(raw, "r") as h5:

        def visit(name: str, item: Any) -> None:
            if isinstance(item, h5py.Dataset) and not name.startswith("optimizer"):
                counts[0] += 1
                counts[1] += int(item.size)

        h5.visititems(visit)
    return counts[0], counts[1]


def load_checked(path: Path, limits: IngestLimits) -> Any:
    """The Keras model of an uploaded file that passed :func:`check_container`, loaded in safe mode.

    Returns:
        The ``keras.Model`` (not compiled).

    Raises:
        Refused: Keras cannot load it, or its stored weights do not match the config's.
    """
    import keras

    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many kinds for a bad file; each is the user's problem
        text = _short(str(exc).split(" Target variable:")[0])  # never echo weight values
        if "could not be loaded" in text or ("expected" in text and "variables" in text):
            raise Refused(f"the stored weights do not match the config's layers: {text}") from None
        raise Refused(f"the model cannot be loaded by Keras in safe mode: {text}") from None
    if not isinstance(model, keras.Model):
        raise Refused("the .keras file does not hold a Keras model")
    parameters = int(sum(math.prod(w.shape) for w in model.weights))
    if parameters > limits.max_parameters:
        raise Refused(
            f"the model has {parameters:,} parameters; at most {limits.max_parameters:,} are allowed"
        )
    try:
        arrays, elements = _stored_weight_elements(path)
    except Exception as exc:
        raise Refused(f"the model's weights file cannot be read: {_short(exc)}") from None
    if arrays != len(model.weights) or elements != parameters:
        raise Refused(
            f"the stored weights ({arrays} arrays, {elements:,} values) do not match the config's "
            f"({len(model.weights)} arrays, {parameters:,} values)"
        )
    return model


def _short(exc: BaseException | str) -> str:
    text = " ".join(str(exc).split())
    return text[:400] + ("…" if len(text) > 400 else "")


def describe_model(model: Any) -> dict[str, Any]:
    """The model as a spec with its costs and which layers are prunable (and why the others are not).

    Raises:
        Refused: a layer outside prunelab's layer language, or a model the spec refuses.
    """
    import pydantic

    from prunespec.costs import model_cost
    from worker.engine.build import model_to_spec

    try:
        spec = model_to_spec(model)
    except TypeError as exc:
        raise Refused(str(exc)) from None
    except (ValueError, pydantic.ValidationError) as exc:
        raise Refused(f"the model cannot be read as a prunelab spec: {_short(exc)}") from None
    cost = model_cost(spec)
    prunable = set(spec.prunable_names())
    weighted = {spec.layers[i].name for i in spec.weighted_indices()}
    widths = spec.widths()
    layers = []
    for layer in spec.layers:
        name = layer.key
        if name in prunable:
            why = "prunable"
        elif name in weighted:
            why = "its units are the model's outputs"
        else:
            why = "has no units of its own"
        layers.append(
            {
                "name": name,
                "type": layer.type,
                "units": widths.get(name),
                "prunable": name in prunable,
                "why": why,
            }
        )
    return {
        "spec": spec.model_dump(mode="json"),
        "input_shape": list(spec.input_shape),
        "output_shape": list(spec.output_shape),
        "parameters": cost.params,
        "flops": cost.flops,
        "layers": layers,
        "prunable": sorted(prunable),
    }


def inspect_keras(path: Path, limits: IngestLimits) -> dict[str, Any]:
    """Everything the service records about an uploaded .keras file.

    Raises:
        Refused: the first check that fails.
    """
    check_container(path, limits)
    model = load_checked(path, limits)
    return describe_model(model)
