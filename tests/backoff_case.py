"""A back-off case whose loss is exact: a hand-built model trained with a vanishing learning rate.

The model computes y = x1 + x2 through 24 ReLU units that each carry 1/24 of the sum (unit i's incoming
weights scale with i + 1, so the weight-norm criterion removes the lowest-numbered units first), and it
trains with a vanishing learning rate: removing k units makes the held-out RMSE k/24 · √(E[s²]) ≈ 0.045 k,
whatever the seed. With a tolerance of 0.1 a cycle that removed 12 units is rejected, one that removed 1
is accepted.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from prunespec.spec import ExperimentSpec

UNITS = 24


def backoff_spec(backoff: dict[str, Any] | None, max_cycles: int = 3) -> ExperimentSpec:
    """The case's spec: weight norm, half of each layer a cycle, tolerance 0.1, ``backoff`` as given."""
    pruning: dict[str, Any] = {
        "criterion": {"type": "weight_norm", "fraction": 0.5},
        "max_fraction": 0.5,
        "fold_constant": False,
        "tolerance": 0.1,
        "max_cycles": max_cycles,
    }
    if backoff is not None:
        pruning["backoff"] = backoff
    return ExperimentSpec.model_validate(
        {
            "name": "backoff",
            "seed": 1,
            "model": {
                "input_shape": [2],
                "layers": [
                    {"type": "dense", "name": "hidden", "units": UNITS, "activation": "relu"},
                    {"type": "dense", "name": "out", "units": 1},
                ],
            },
            "dataset": {"name": "sum", "train_samples": 400, "test_samples": 400},
            "training": {"optimizer": "sgd", "learning_rate": 1e-9, "batch_size": 400, "epochs": 1},
            "pruning": pruning,
        }
    )


def backoff_weights() -> dict[str, list[np.ndarray]]:
    """Cycle 0's weights by layer name (``run_cycles(initial_weights=...)``)."""
    scale = np.arange(1, UNITS + 1, dtype=np.float32)
    hidden = np.stack([scale, scale]).astype(np.float32)  # unit i: relu((i + 1) · (x1 + x2))
    out = (1.0 / (UNITS * scale)).reshape(UNITS, 1).astype(np.float32)
    return {"hidden": [hidden, np.zeros(UNITS, np.float32)], "out": [out, np.zeros(1, np.float32)]}
