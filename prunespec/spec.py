"""Experiment specs: a model (see ``prunespec.layers``), a dataset, and the training, pruning and
benchmark recipes; and reading them from YAML or JSON files.

Every spec is validated when it is constructed: unknown fields are rejected, numbers are bounded, and
a dataset whose arrays do not fit the model is refused before any training. Specs round-trip through
plain dicts, so the same text serves YAML files, the REST API and the database.

This module never imports TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from prunespec.criteria import (  # the criterion models live there; re-exported for existing imports
    ActivationCountCriterion as ActivationCountCriterion,
)
from prunespec.criteria import (
    AnyCriterion,
    ApozCriterion,
    BnScaleCriterion,
    Criterion,
    NoCriterion,
    bn_after,
    criterion_shorthand,
)
from prunespec.criteria import CountBandCriterion as CountBandCriterion
from prunespec.criteria import VarianceBandCriterion as VarianceBandCriterion
from prunespec.criteria import VarianceCriterion as VarianceCriterion
from prunespec.criteria import WeightNormCriterion as WeightNormCriterion
from prunespec.datapaths import check_request_path
from prunespec.layers import DropoutLayer, ModelSpec, Shape, StrictModel
from prunespec.presets import preset
from prunespec.spec_yaml import SpecTooComplex, load_yaml
from prunespec.uploaded import resolve_dataset, resolve_model

#: Largest upload id (the id columns are 32-bit).
MAX_UPLOAD_ID = 2**31 - 1

# --------------------------------------------------------------------------------------------- datasets


class SumDataset(StrictModel):
    """Generated x in R^2 with target y = x1 + x2 (Çallı's summation experiment)."""

    name: Literal["sum"] = "sum"
    train_samples: int = Field(default=100_000, ge=1, le=10_000_000)
    test_samples: int = Field(default=10_000, ge=1, le=1_000_000)
    distribution: Literal["uniform", "normal"] = "uniform"
    low: float = Field(default=0.0, ge=-1e6, le=1e6)
    high: float = Field(default=1.0, ge=-1e6, le=1e6)
    mean: float = Field(default=0.0, ge=-1e6, le=1e6)
    std: float = Field(default=1.0, gt=0.0, le=1e6)
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)

    @model_validator(mode="after")
    def _range(self) -> SumDataset:
        if self.distribution == "uniform" and not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self


class ImageDataset(StrictModel):
    """MNIST or Fashion-MNIST read from the data directory (no download)."""

    name: Literal["mnist", "fashion-mnist"]
    train_samples: int | None = Field(default=None, ge=1, le=60_000)
    test_samples: int | None = Field(default=None, ge=1, le=10_000)
    target: Literal["labels", "input"] = "labels"


class NpzDataset(StrictModel):
    """A user's .npz file holding x_train, y_train, x_test and y_test: a ``path`` in the server's data
    directories, or the ``id`` of an uploaded data set (``POST /api/datasets``), never both."""

    name: Literal["npz"] = "npz"
    path: str | None = Field(default=None, min_length=1, max_length=4096)
    id: int | None = Field(default=None, ge=1, le=MAX_UPLOAD_ID, description="an uploaded data set's id")
    sha256: str | None = Field(
        default=None, pattern="^[0-9a-f]{64}$", description="the upload's hash (filled in by the server)"
    )
    train_samples: int | None = Field(default=None, ge=1)
    test_samples: int | None = Field(default=None, ge=1)
    target: Literal["labels", "input", "values"] = "labels"

    @field_validator("path", mode="after")
    @classmethod
    def _inside_data_dirs(cls, value: str | None) -> str | None:
        """In a request, the path stays inside the server's data directories (``prunespec.datapaths``)."""
        return None if value is None else check_request_path(value)

    @model_validator(mode="before")
    @classmethod
    def _upload_hash(cls, data: Any) -> Any:
        """In a request, an uploaded data set's id resolves (for the caller) and its hash is filled in."""
        if (
            not isinstance(data, Mapping)
            or isinstance(data.get("id"), bool)
            or not isinstance(data.get("id"), int)
        ):
            return data
        record = resolve_dataset(data["id"])
        if record is None:
            return data
        if data.get("sha256") not in (None, record.sha256):
            raise ValueError(f"uploaded data set {data['id']} does not hold the bytes this spec names")
        return {**data, "sha256": record.sha256}

    @model_validator(mode="after")
    def _path_or_id(self) -> NpzDataset:
        if (self.path is None) == (self.id is None):
            raise ValueError("give the .npz file's path or an uploaded data set's id (not both)")
        return self


class UploadedModel(StrictModel):
    """The uploaded model a spec's ``model`` came from (``model: {uploaded: ID, weights: …}``).

    ``model`` then holds the layers read from the file at submit time; the worker builds them and, with
    ``weights: trained``, loads the file's weights before cycle 0 (``reinitialize`` trains from fresh
    weights).
    """

    id: int = Field(ge=1, le=MAX_UPLOAD_ID)
    weights: Literal["trained", "reinitialize"] = "trained"
    sha256: str | None = Field(default=None, pattern="^[0-9a-f]{64}$")


DatasetSpec = Annotated[SumDataset | ImageDataset | NpzDataset, Field(discriminator="name")]

IMAGE_SHAPE: Shape = (28, 28, 1)


def dataset_shapes(dataset: SumDataset | ImageDataset | NpzDataset) -> tuple[Shape, Shape] | None:
    """(input shape, target shape) a dataset yields, or None where only the file knows."""
    if isinstance(dataset, SumDataset):
        return (2,), (1,)
    if isinstance(dataset, ImageDataset):
        return IMAGE_SHAPE, (IMAGE_SHAPE if dataset.target == "input" else (10,))
    if dataset.id is not None:
        record = resolve_dataset(dataset.id)  # only where the server resolves uploads
        if record is None:
            return None
        if dataset.target == "input":
            return record.input_shape, record.input_shape
        if dataset.target == "labels":
            return (record.input_shape, (record.classes,)) if record.classes else None
        return record.input_shape, record.target_shape
    return None


# --------------------------------------------------------------------------------------------- training


class TrainingSpec(StrictModel):
    """How every cycle trains: optimiser, loss, batch, epochs and regularisation."""

    optimizer: Literal["sgd", "momentum", "adam", "rmsprop"] = "adam"
    learning_rate: float = Field(default=1e-3, gt=0.0, le=10.0)
    momentum: float = Field(default=0.9, ge=0.0, lt=1.0, description="used by optimizer 'momentum'")
    batch_size: int = Field(default=128, ge=1, le=65_536)
    epochs: int = Field(default=5, ge=1, le=1000, description="epochs of every retraining cycle")
    first_epochs: int | None = Field(default=None, ge=1, le=1000, description="epochs of cycle 0")
    loss: Literal["mse", "rmse", "crossentropy"] = "mse"
    head: Literal["softmax", "llr"] = Field(
        default="softmax",
        description="crossentropy only: softmax over classes, or independent per-class sigmoid logits (LLR)",
    )
    l1: float = Field(default=0.0, ge=0.0, le=10.0, description="L1 penalty on kernels")
    bn_l1: float = Field(
        default=0.0,
        ge=0.0,
        le=10.0,
        description="L1 penalty on the batch-norm scale γ after every pruned layer (Network Slimming)",
    )
    l2: float = Field(default=0.0, ge=0.0, le=10.0, description="L2 penalty on kernels")
    activity_l1: float = Field(default=0.0, ge=0.0, le=10.0, description="L1 penalty on prunable outputs")
    activity_l2: float = Field(default=0.0, ge=0.0, le=10.0, description="L2 penalty on prunable outputs")
    group_lasso: float = Field(
        default=0.0, ge=0.0, le=10.0, description="penalty on the L2 norm of each prunable unit's weights"
    )
    lr_schedule: Literal["constant", "cosine"] = Field(
        default="constant",
        description="learning rate within every cycle: constant, or cosine decay from learning_rate to 0",
    )
    validation_batch_size: int | None = Field(
        default=None,
        ge=1,
        le=65_536,
        description="examples per step of the per-epoch validation; default: batch_size",
    )
    validation_every: int = Field(
        default=1,
        ge=1,
        le=1000,
        description="validate every N epochs, and always after a cycle's last epoch; default 1 (every epoch)",
    )

    @property
    def cycle0_epochs(self) -> int:
        return self.first_epochs if self.first_epochs is not None else self.epochs


# --------------------------------------------------------------------------------------------- pruning


class PruningRule(StrictModel):
    """A criterion and cap for some layers, overriding the pruning spec's defaults there."""

    layers: list[str] = Field(min_length=1, max_length=1000, description="prunable layers (groups) by name")
    criterion: Criterion | None = Field(default=None, description="default: pruning.criterion")
    max_fraction: float | None = Field(
        default=None, gt=0.0, le=1.0, description="cap on units removed per layer a cycle; default: pruning's"
    )

    @field_validator("criterion", mode="before")
    @classmethod
    def _criterion_shorthand(cls, value: Any) -> Any:
        return criterion_shorthand(value)


class PruningTarget(StrictModel):
    """A cost budget: the fraction of cycle 0's FLOPs or parameters the pruned model should keep.

    Each cycle removes the units of lowest normalised importance (each layer's criterion, normalised per
    layer so layers compare) across every pruned layer until the model costs at most
    ``max(fraction · cost₀, cost · fraction^(1/(max_cycles − 1)))``: the reduction is spread evenly (as a
    ratio) over the cycles, and never goes below the target.
    """

    flops: float | None = Field(default=None, gt=0.0, lt=1.0, description="keep this fraction of FLOPs")
    params: float | None = Field(default=None, gt=0.0, lt=1.0, description="keep this fraction of parameters")

    @model_validator(mode="after")
    def _exactly_one(self) -> PruningTarget:
        if (self.flops is None) == (self.params is None):
            raise ValueError("give exactly one of 'flops' or 'params'")
        return self

    @property
    def kind(self) -> Literal["flops", "params"]:
        return "flops" if self.flops is not None else "params"

    @property
    def fraction(self) -> float:
        return float(self.flops if self.flops is not None else self.params or 0.0)


class Backoff(StrictModel):
    """What a rejected cycle does instead of ending the run: back off and try a smaller step.

    A cycle is rejected when its validation metric falls more than ``pruning.tolerance`` behind cycle 0's.
    With ``retries`` N > 0, the run then continues from the last accepted cycle's trained model, pruned
    again with a smaller step: after r rejections in a row, each layer loses ``max(1, floor(factor^r · n))``
    of the n units its criterion (or the cost target) would choose at the full step, the most prunable
    first; constant units still go. The next cycle trains that model. An accepted cycle resets the count
    (the following step is full again). The (N + 1)-th rejection in a row ends the run with stop reason
    ``tolerance``, as a rejection does without back-off; the last accepted cycle's model is the result.
    Every rejected cycle stays recorded.

    Attributes:
        retries: rejections in a row that back off instead of ending the run; 0 (default) ends the run at
            the first rejection.
        factor: the step's scale per rejection in a row, in (0, 1); default 0.5 (halve it).
    """

    retries: int = Field(
        default=0, ge=0, le=20, description="rejected cycles in a row that retry with a smaller step"
    )
    factor: float = Field(
        default=0.5, gt=0.0, lt=1.0, description="each retry's step: the previous step times this factor"
    )

    def step(self, rejections: int) -> float:
        """The share of the full step taken after ``rejections`` rejected cycles in a row (``factor^r``)."""
        return float(self.factor**rejections)


class PruningSpec(StrictModel):
    """Which units each cycle removes, and when the cycles stop."""

    criterion: Criterion = Field(default_factory=ApozCriterion)
    group_score: Literal["mean", "max", "sum"] = Field(
        default="mean", description="how a channel's score aggregates over its dependency group's members"
    )
    rules: list[PruningRule] = Field(
        default_factory=list,
        max_length=1000,
        description="per-layer criteria and caps overriding the defaults",
    )
    target: PruningTarget | None = Field(
        default=None,
        description="remove the least important units across layers until the model keeps this cost fraction",
    )
    layers: list[str] | None = Field(default=None, description="prunable layers by name; default all")
    layers_per_cycle: int | None = Field(
        default=None,
        ge=1,
        description="trim only this many layers a cycle, highest mean APoZ first (Hu et al.)",
    )
    max_fraction: float = Field(
        default=0.5, gt=0.0, le=1.0, description="cap on units removed per layer a cycle"
    )
    min_units: int = Field(default=1, ge=1, description="never leave a layer with fewer units")
    max_cycles: int = Field(default=10, ge=1, le=500)
    tolerance: float | None = Field(
        default=None,
        ge=0.0,
        description="stop when the validation metric is worse than cycle 0's by more than this",
    )
    backoff: Backoff = Field(
        default_factory=Backoff,
        description="after a rejected cycle, retry from the last accepted model with a smaller step",
    )
    fold_constant: bool = Field(
        default=True, description="also remove units whose output is constant, folding it into the next bias"
    )
    merge_linear: bool = Field(
        default=False,
        description="merge dense ReLU units that are active on every measured input (exact on that data)",
    )
    merge_tolerance: float = Field(
        default=0.0,
        ge=0.0,
        le=0.1,
        description=(
            "merge_linear: also merge units inactive on at most this fraction of the measured inputs, "
            "made active on all of them (changes the output only on those few inputs)"
        ),
    )
    distortion: float = Field(default=0.0, ge=0.0, le=10.0, description="Çallı's weight-distortion scale")
    finetune: Literal["full", "snapshot"] = Field(
        default="full",
        description="after pruning retrain everything, or only biases and BatchNorm (Liang et al.)",
    )
    stats_samples: int | None = Field(
        default=10_000, ge=1, description="training examples measured per cycle"
    )
    histogram_bins: int = Field(default=32, ge=4, le=256)
    constant_tolerance: float = Field(default=1e-6, ge=0.0, le=1.0)

    @field_validator("criterion", mode="before")
    @classmethod
    def _criterion_shorthand(cls, value: Any) -> Any:
        return criterion_shorthand(value)

    @model_validator(mode="after")
    def _rules_and_target(self) -> PruningSpec:
        seen: dict[str, int] = {}
        for position, rule in enumerate(self.rules):
            for name in rule.layers:
                if name in seen:
                    raise ValueError(
                        f"rules: layer '{name}' is in rule {seen[name]} and rule {position}; "
                        "a layer may be in one rule only"
                    )
                seen[name] = position
        if self.target is not None:
            if self.layers_per_cycle is not None:
                raise ValueError("target: cannot be combined with layers_per_cycle")
            if isinstance(self.criterion, NoCriterion) and not self.rules:
                raise ValueError("target: ranks units by a criterion, but criterion is 'none'")
        if self.backoff.retries > 0 and self.tolerance is None:
            raise ValueError("backoff.retries: needs a tolerance; without one no cycle is ever rejected")
        return self

    def rule_for(self, layer: str) -> tuple[AnyCriterion, float]:
        """The criterion and per-cycle cap that apply to one layer (its rule's, else the defaults).

        Args:
            layer: a pruned layer's (group's) name.

        Returns:
            (criterion, max_fraction).
        """
        for rule in self.rules:
            if layer in rule.layers:
                criterion = rule.criterion if rule.criterion is not None else self.criterion
                return criterion, rule.max_fraction if rule.max_fraction is not None else self.max_fraction
        return self.criterion, self.max_fraction


def check_pruning_fits(model: ModelSpec, pruning: PruningSpec) -> None:
    """Raise ValueError when the pruning recipe names layers the model cannot prune this way.

    Every layer in ``pruning.rules`` must be pruned (prunable, and in ``pruning.layers`` when given);
    every pruned layer whose criterion is ``bn_scale`` needs a batch norm after it.

    Args:
        model: the architecture.
        pruning: the recipe.

    Raises:
        ValueError: naming the field and the layer.
    """
    prunable = model.prunable_names()
    pruned = list(pruning.layers) if pruning.layers is not None else prunable
    for position, rule in enumerate(pruning.rules):
        for name in rule.layers:
            if name not in pruned:
                where = "pruning.layers" if pruning.layers is not None else "the prunable layers"
                raise ValueError(
                    f"pruning.rules.{position}.layers: '{name}' is not among {where}; prunable: {prunable}"
                )
    for name in pruned:
        criterion, _ = pruning.rule_for(name)
        if isinstance(criterion, BnScaleCriterion) and bn_after(model, name) is None:
            raise ValueError(
                f"pruning: criterion bn_scale needs a batch_norm right after layer '{name}', which has none "
                "(add one, or give that layer another criterion in pruning.rules)"
            )


# --------------------------------------------------------------------------------------------- benchmark

TFLiteFormat = Literal["float32", "float16", "int8_dynamic", "int8_full"]


def _default_formats() -> list[TFLiteFormat]:
    return ["float32"]


class BenchmarkSpec(StrictModel):
    """Which cycles' models are converted to TFLite and timed after the cycles finish.

    All chosen models are timed in one run, interleaved, so their ratios hold on a noisy machine.
    """

    cycles: Literal["none", "first_last", "every"] = Field(
        default="first_last", description="cycle 0 and the final cycle, every cycle, or none"
    )
    formats: list[TFLiteFormat] = Field(default_factory=_default_formats, min_length=1, max_length=4)
    runs: int = Field(default=200, ge=1, le=100_000, description="timed batch-1 invocations per model")
    warmup: int = Field(default=20, ge=0, le=10_000)
    threads: int = Field(default=1, ge=1, le=64)
    fidelity_samples: int | None = Field(
        default=2000, ge=1, description="test examples scored by both the Keras and the TFLite model"
    )

    @field_validator("formats")
    @classmethod
    def _unique_formats(cls, formats: list[str]) -> list[str]:
        return list(dict.fromkeys(formats))


# --------------------------------------------------------------------------------------------- experiment


class ExperimentSpec(StrictModel):
    """A whole experiment: model, dataset, training recipe and pruning recipe."""

    name: str = Field(min_length=1, max_length=200)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    model: ModelSpec
    dataset: DatasetSpec
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    pruning: PruningSpec = Field(default_factory=PruningSpec)
    benchmark: BenchmarkSpec = Field(default_factory=BenchmarkSpec)
    uploaded_model: UploadedModel | None = Field(
        default=None, description="filled in by the server from model: {uploaded: ID, weights: ...}"
    )

    @model_validator(mode="before")
    @classmethod
    def _resolve_uploaded_model(cls, data: Any) -> Any:
        """``model: {uploaded: ID, weights: …}`` → the upload's layers in ``model`` and the reference in
        ``uploaded_model`` (left as written when it cannot be resolved: ``model``'s validator says why)."""
        if not isinstance(data, Mapping):
            return data
        model = data.get("model")
        if isinstance(model, Mapping) and "uploaded" in model:
            try:
                reference = _uploaded_reference(model)
                record = resolve_model(reference.id)
            except (ValueError, TypeError):
                return data
            resolved = {**reference.model_dump(), "sha256": record.sha256}
            return {**data, "model": record.spec, "uploaded_model": resolved}
        reference_data = data.get("uploaded_model")
        if isinstance(reference_data, Mapping) and isinstance(reference_data.get("id"), int):
            try:
                record = resolve_model(reference_data["id"])
            except ValueError:
                return data  # no resolver: a stored spec (its worker checks the hash); else refused below
            if reference_data.get("sha256") not in (None, record.sha256):
                raise ValueError(
                    f"uploaded model {reference_data['id']} does not hold the bytes this spec names"
                )
            return {**data, "uploaded_model": {**reference_data, "sha256": record.sha256}}
        return data

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, value: str) -> str:
        """A name shows the experiment in the list: whitespace alone is no name."""
        if not value.strip():
            raise ValueError("name must contain something besides spaces")
        return value

    @field_validator("model", mode="before")
    @classmethod
    def _expand_preset(cls, value: Any) -> Any:
        if isinstance(value, str):
            return preset(value)
        if isinstance(value, Mapping) and "uploaded" in value:
            return resolve_model(_uploaded_reference(value).id).spec  # raises: says why it is refused
        if isinstance(value, Mapping) and "preset" in value:
            extra = set(value) - {"preset"}
            if extra:
                raise ValueError(f"'preset' cannot be combined with {sorted(extra)}")
            return preset(str(value["preset"]))
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentSpec:
        prunable = self.model.prunable_names()
        if self.pruning.layers is not None:
            unknown = [name for name in self.pruning.layers if name not in prunable]
            if unknown:
                raise ValueError(f"pruning.layers: {unknown} are not prunable layers; prunable: {prunable}")
        check_pruning_fits(self.model, self.pruning)  # rules and bn_scale (helper criteria)
        output = self.model.layers[self.model.weighted_indices()[-1]]
        if self.training.loss == "crossentropy" and getattr(output, "activation", "linear") != "linear":
            raise ValueError(
                "model: the output layer must have activation 'linear' with loss 'crossentropy' "
                "(the head applies softmax or sigmoid)"
            )
        after_output = self.model.layers[self.model.weighted_indices()[-1] + 1 :]
        if self.training.loss == "crossentropy" and any(
            not isinstance(x, DropoutLayer) for x in after_output
        ):
            raise ValueError("model: with loss 'crossentropy' the output dense layer must come last")
        shapes = dataset_shapes(self.dataset)
        if shapes is not None:
            check_data_fits(self.model, shapes[0], shapes[1], self.training.loss)
        return self


def check_data_fits(model: ModelSpec, input_shape: Shape, target_shape: Shape, loss: str) -> None:
    """Raise ValueError when a dataset's arrays do not fit the model.

    An input fits when it has the model's input shape or the same number of elements (a 28x28x1
    image feeds a 784-wide dense input). Labels fit a crossentropy model whose output width is the
    number of classes; any other target must have the model's output shape.
    """
    if tuple(input_shape) != tuple(model.input_shape) and math.prod(input_shape) != math.prod(
        model.input_shape
    ):
        raise ValueError(
            f"dataset: inputs of shape {tuple(input_shape)} do not fit model.input_shape "
            f"{tuple(model.input_shape)}"
        )
    output = tuple(model.output_shape)
    if loss == "crossentropy":
        if len(target_shape) != 1:
            raise ValueError(
                f"dataset: crossentropy needs class labels but the targets have shape {target_shape}"
            )
        if output != tuple(target_shape):
            raise ValueError(
                f"dataset: {target_shape[0] if target_shape else '?'} classes need an output of shape "
                f"({target_shape[0] if target_shape else '?'},) but the model's output is {output}"
            )
    elif output != tuple(target_shape):
        raise ValueError(
            f"dataset: targets of shape {tuple(target_shape)} do not fit the model's output {output}"
        )


def _uploaded_reference(model: Mapping[str, Any]) -> UploadedModel:
    """``{uploaded: ID, weights: …}`` as an :class:`UploadedModel`.

    Raises:
        ValueError: other keys beside them, or an id or weights value that is not allowed.
    """
    extra = set(model) - {"uploaded", "weights"}
    if extra:
        raise ValueError(f"'uploaded' can only be combined with 'weights', not {sorted(extra)}")
    upload_id = model["uploaded"]
    if isinstance(upload_id, bool) or not isinstance(upload_id, int):
        raise ValueError(f"'uploaded' is an uploaded model's id (a whole number), not {upload_id!r}")
    return UploadedModel(id=upload_id, weights=model.get("weights", "trained"))


# --------------------------------------------------------------------------------------------- errors


def _is_union_tag(node: Any, key: Any) -> bool:
    """True when ``key`` is the tag pydantic put into an error location for a tagged-union member."""
    return (
        isinstance(node, dict)
        and isinstance(key, str)
        and key not in node
        and key in (node.get("type"), node.get("name"))
    )


def written_location(loc: Iterable[str | int], data: Any) -> list[str | int]:
    """A validation error's location as the user wrote the fields.

    Pydantic puts the tag of a discriminated-union member into the location
    (``model.layers.0.dense.units``); walking the input drops the tags the user never wrote
    (``model.layers.0.units``).

    Args:
        loc: the error's location, relative to ``data``.
        data: the input that was validated.

    Returns:
        The location without union tags.
    """
    out: list[str | int] = []
    node = data
    for key in loc:
        if _is_union_tag(node, key):
            continue
        out.append(key)
        if isinstance(node, dict):
            node = node.get(key)
        elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            node = node[key]
        else:
            node = None
    return out


# --------------------------------------------------------------------------------------------- files


def load_spec(path: str | Path) -> ExperimentSpec:
    """Read an experiment spec from a YAML or JSON file.

    Raises:
        FileNotFoundError: no such file.
        yaml.YAMLError: the file is not YAML.
        SpecTooComplex: the file is nested too deep or too large once aliases are expanded.
        ValueError: the file is not a mapping.
        pydantic.ValidationError: the spec is invalid (each error names its field).
    """
    text = Path(path).read_text(encoding="utf-8")
    try:
        data = load_yaml(text)
    except SpecTooComplex as exc:
        raise SpecTooComplex(f"{path}: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a spec must be a mapping of fields, got {type(data).__name__}")
    return ExperimentSpec.model_validate(data)
