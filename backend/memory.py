"""How much memory training an experiment needs, estimated from its spec alone (no TensorFlow).

A worker killed by the kernel's out-of-memory killer loses its attempt without a word; checking this
estimate against the worker's limit before the model is built fails such an experiment at once, with
a message naming both numbers. Every number is float32 (4 bytes):

* **weights**: the model's parameters (``prunespec.costs``), twice: the model being trained and the
  pruned copy a cycle hands to the next;
* **gradients**: one value per parameter;
* **optimizer state**: per parameter, ``adam`` keeps 2 slots (first and second moments),
  ``momentum`` and ``rmsprop`` 1, ``sgd`` none;
* **activations**: at the batch size, every layer's output (and the input) is kept for the backward
  pass, and as many gradients flow back: ``2 · batch_size · (input + Σ layer outputs)`` values;
* **data**: the training and test examples with their targets, where the spec states their number and
  shapes (an ``npz`` file's size is only known to the file, and counts 0);
* **runtime**: a fixed :data:`RUNTIME_BYTES` for TensorFlow and Keras themselves.

It is an estimate of the steady state, not a bound: TensorFlow's allocator, temporary buffers of
large convolutions and the activation statistics pass may add more. Use :func:`training_memory`
(the preview can show it) and :func:`check_memory` (the worker's fast failure).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from prunespec.costs import model_cost
from prunespec.layers import infer_shapes
from prunespec.spec import ExperimentSpec, ImageDataset, SumDataset, dataset_shapes

#: Bytes per stored value (float32).
BYTES_PER_VALUE = 4
#: Optimizer slots per parameter.
OPTIMIZER_SLOTS: dict[str, int] = {"sgd": 0, "momentum": 1, "rmsprop": 1, "adam": 2}
#: TensorFlow's and Keras's own memory in a worker process, in bytes (measured RSS after import and a
#: first tiny fit is about 0.5 GiB on CPU).
RUNTIME_BYTES = 512 * 2**20
#: MNIST's and Fashion-MNIST's training and test set sizes.
IMAGE_TRAIN, IMAGE_TEST = 60_000, 10_000
#: Where a cgroup v2 (container) memory limit is read.
CGROUP_MEMORY_MAX = Path("/sys/fs/cgroup/memory.max")
MIB = 2**20


@dataclass(frozen=True)
class MemoryEstimate:
    """Estimated bytes one experiment needs to train, by part (see the module docstring).

    Attributes:
        params: the model's parameters.
        weights, gradients, optimizer, activations, data, runtime: bytes of each part.
    """

    params: int
    weights: int
    gradients: int
    optimizer: int
    activations: int
    data: int
    runtime: int

    @property
    def total(self) -> int:
        """All parts together, in bytes."""
        return self.weights + self.gradients + self.optimizer + self.activations + self.data + self.runtime

    @property
    def total_mb(self) -> float:
        """:attr:`total` in MiB."""
        return self.total / MIB

    def as_dict(self) -> dict[str, int]:
        """The parts and the total as plain JSON-ready integers (bytes; ``params`` a count)."""
        return {
            "params": self.params,
            "weights": self.weights,
            "gradients": self.gradients,
            "optimizer": self.optimizer,
            "activations": self.activations,
            "data": self.data,
            "runtime": self.runtime,
            "total": self.total,
        }


def training_memory(spec: ExperimentSpec) -> MemoryEstimate:
    """Estimate the memory training ``spec``'s model takes (the first cycle, the largest).

    Args:
        spec: a validated experiment.

    Returns:
        The estimate by part.
    """
    params = model_cost(spec.model).params
    outputs = sum(math.prod(shape) for shape in infer_shapes(spec.model.input_shape, spec.model.layers))
    values_per_example = math.prod(spec.model.input_shape) + outputs
    return MemoryEstimate(
        params=params,
        weights=2 * params * BYTES_PER_VALUE,
        gradients=params * BYTES_PER_VALUE,
        optimizer=OPTIMIZER_SLOTS[spec.training.optimizer] * params * BYTES_PER_VALUE,
        activations=2 * spec.training.batch_size * values_per_example * BYTES_PER_VALUE,
        data=_data_bytes(spec),
        runtime=RUNTIME_BYTES,
    )


def _data_bytes(spec: ExperimentSpec) -> int:
    shapes = dataset_shapes(spec.dataset)
    dataset = spec.dataset
    if shapes is None:
        return 0
    if isinstance(dataset, SumDataset):
        examples = dataset.train_samples + dataset.test_samples
    elif isinstance(dataset, ImageDataset):
        examples = (dataset.train_samples or IMAGE_TRAIN) + (dataset.test_samples or IMAGE_TEST)
    else:
        return 0
    return examples * (math.prod(shapes[0]) + math.prod(shapes[1])) * BYTES_PER_VALUE


def machine_memory_bytes() -> int | None:
    """The memory this process may use: the machine's physical memory, or its cgroup's limit when
    that is smaller; None when neither can be read."""
    try:
        physical: int | None = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        physical = None
    try:
        text = CGROUP_MEMORY_MAX.read_text().strip()
        cgroup = int(text) if text.isdigit() else None
    except OSError:
        cgroup = None
    known = [value for value in (physical, cgroup) if value]
    return min(known) if known else None


def memory_limit_bytes(limit_mb: int) -> int | None:
    """The limit an experiment's estimate is checked against.

    Args:
        limit_mb: ``Settings.worker_memory_limit_mb``; 0 means the machine's (or cgroup's) memory.

    Returns:
        Bytes, or None when ``limit_mb`` is 0 and the machine's memory cannot be read (no check).
    """
    return limit_mb * MIB if limit_mb > 0 else machine_memory_bytes()


class MemoryLimitExceeded(ValueError):
    """The experiment's estimated training memory is above the worker's limit."""


def check_memory(spec: ExperimentSpec, limit_mb: int) -> MemoryEstimate:
    """Estimate ``spec``'s training memory and refuse it when it exceeds the limit.

    Args:
        spec: a validated experiment.
        limit_mb: ``Settings.worker_memory_limit_mb`` (0: the machine's memory).

    Returns:
        The estimate, when it fits.

    Raises:
        MemoryLimitExceeded: naming the estimate (with its largest parts) and the limit.
    """
    estimate = training_memory(spec)
    limit = memory_limit_bytes(limit_mb)
    if limit is not None and estimate.total > limit:
        parts = {
            "weights": estimate.weights,
            "gradients": estimate.gradients,
            "optimizer state": estimate.optimizer,
            f"activations at batch size {spec.training.batch_size}": estimate.activations,
            "data": estimate.data,
        }
        largest = sorted(parts.items(), key=lambda item: -item[1])[:2]
        detail = ", ".join(f"{name} {value / MIB:,.0f} MiB" for name, value in largest)
        source = "worker_memory_limit_mb" if limit_mb > 0 else "the machine's memory"
        raise MemoryLimitExceeded(
            f"estimated training memory {estimate.total_mb:,.0f} MiB ({estimate.params:,} parameters; "
            f"{detail}) exceeds the worker's limit of {limit / MIB:,.0f} MiB ({source}); "
            "use a smaller model or batch size"
        )
    return estimate
