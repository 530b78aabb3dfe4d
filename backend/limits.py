"""What one submitted experiment may cost this server: parameters, FLOPs per example, training work and
wall time, each against a setting (``PRUNELAB_MAX_...``).

The estimates come from the spec alone (``prunespec.costs`` for the model; the dataset's training
examples and the planned epochs for the training work), so a spec is refused before anything is queued.
Training work is counted over all cycles: ``examples × (cycle 0's epochs + (max_cycles − 1) × epochs)``,
the most a run can train (pruning may stop it earlier, never later). An ``npz`` dataset without
``train_samples`` has a size only its file knows; its training work is reported as unknown and only the
wall-time limit (enforced by the worker) bounds it.

``prunelab run`` (local, no server) never calls this module. This module never imports TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass

from backend.schemas import LimitCheck
from backend.settings import Settings
from prunespec.costs import format_count, model_cost
from prunespec.spec import ExperimentSpec, ImageDataset, NpzDataset, SumDataset

#: Training examples of a built-in image dataset read whole (MNIST and Fashion-MNIST).
IMAGE_TRAIN_EXAMPLES = 60_000
#: The environment variable behind each limit (as ``backend.settings`` reads it).
SETTING_NAMES = {
    "parameters": "PRUNELAB_MAX_PARAMETERS",
    "flops_per_example": "PRUNELAB_MAX_FLOPS_PER_EXAMPLE",
    "training_examples_epochs": "PRUNELAB_MAX_TRAINING_EXAMPLES_EPOCHS",
    "wall_seconds": "PRUNELAB_MAX_WALL_SECONDS",
}


@dataclass(frozen=True)
class CostLimits:
    """The most one experiment may cost.

    Attributes:
        parameters: most parameters of the model.
        flops_per_example: most FLOPs for one example at inference.
        training_examples_epochs: most training examples × epochs over all cycles.
        wall_seconds: seconds a running experiment may take before the worker stops it.
    """

    parameters: int
    flops_per_example: int
    training_examples_epochs: int
    wall_seconds: int

    @classmethod
    def from_settings(cls, settings: Settings) -> CostLimits:
        """The limits a server's settings set."""
        return cls(
            parameters=settings.max_parameters,
            flops_per_example=settings.max_flops_per_example,
            training_examples_epochs=settings.max_training_examples_epochs,
            wall_seconds=settings.max_wall_seconds,
        )


def training_examples(dataset: SumDataset | ImageDataset | NpzDataset) -> int | None:
    """Training examples a dataset yields, or None where only its file knows."""
    if isinstance(dataset, SumDataset):
        return dataset.train_samples
    if isinstance(dataset, ImageDataset):
        return dataset.train_samples if dataset.train_samples is not None else IMAGE_TRAIN_EXAMPLES
    return dataset.train_samples


def planned_epochs(spec: ExperimentSpec) -> int:
    """Epochs over all cycles if none stops early: cycle 0's, then ``max_cycles − 1`` retrainings."""
    training = spec.training
    return training.cycle0_epochs + (spec.pruning.max_cycles - 1) * training.epochs


def training_examples_epochs(spec: ExperimentSpec) -> int | None:
    """Training examples × epochs over all cycles, or None where the dataset's size is unknown."""
    examples = training_examples(spec.dataset)
    return None if examples is None else examples * planned_epochs(spec)


def limit_checks(spec: ExperimentSpec, limits: CostLimits) -> list[LimitCheck]:
    """The spec's estimated costs against the limits, one check per limit.

    Args:
        spec: a validated spec.
        limits: the server's limits.

    Returns:
        Checks for parameters, FLOPs per example, training examples × epochs (``value`` None when
        the dataset's size is unknown) and wall seconds (no estimate; ``value`` None).
    """
    cost = model_cost(spec.model)
    work = training_examples_epochs(spec)
    checks = [
        ("parameters", "model", cost.params, limits.parameters),
        ("flops_per_example", "model", cost.flops, limits.flops_per_example),
        ("training_examples_epochs", "training", work, limits.training_examples_epochs),
        ("wall_seconds", "training", None, limits.wall_seconds),
    ]
    return [
        LimitCheck(
            name=name,
            field=field,
            value=value,
            limit=limit,
            within=value is None or value <= limit,
            setting=SETTING_NAMES[name],
        )
        for name, field, value, limit in checks
    ]


def _explain(check: LimitCheck, spec: ExperimentSpec) -> str:
    assert check.value is not None
    value, limit = format_count(check.value), format_count(check.limit)
    allowed = f"this server allows at most {limit} ({check.setting})"
    if check.name == "parameters":
        return f"model has {value} parameters; {allowed}"
    if check.name == "flops_per_example":
        return f"model costs {value} FLOPs per example; {allowed}"
    examples = training_examples(spec.dataset)
    return (
        f"training examples × epochs over all cycles is {value} ({format_count(examples or 0)} examples × "
        f"{planned_epochs(spec)} epochs); {allowed}"
    )


def over_limits(spec: ExperimentSpec, limits: CostLimits) -> list[tuple[tuple[str, ...], str]]:
    """Every limit the spec exceeds, as (field inside the spec, message naming limit and value)."""
    return [
        ((check.field,), _explain(check, spec)) for check in limit_checks(spec, limits) if not check.within
    ]
