"""A cycle hands out the weight scores it selected with, and the recorder stores them per layer."""

from __future__ import annotations

import keras
import numpy as np

from backend.arrays import decode
from prunespec.spec import ExperimentSpec
from worker.engine.cycle import run_cycles
from worker.engine.data import Dataset
from worker.engine.results import CycleResult, EpochRecord
from worker.recorder import cycle_row


class _Kernels:
    """Keeps each cycle's result and the trained model's conv kernel."""

    def __init__(self) -> None:
        self.cycles: list[tuple[CycleResult, np.ndarray]] = []

    def on_epoch(self, record: EpochRecord) -> None:
        pass

    def on_cycle(self, result: CycleResult, trained: keras.Model, pruned: keras.Model | None) -> None:
        self.cycles.append((result, np.asarray(keras.ops.convert_to_numpy(trained.get_layer("conv").kernel))))

    def cancelled(self) -> bool:
        return False


def test_a_weight_norm_cycle_records_the_filter_norms_of_its_trained_model() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 60)
    x = (rng.normal(size=(60, 6, 6, 1)) + labels[:, None, None, None]).astype("float32")
    data = Dataset(x[:48], labels[:48], x[48:], labels[48:], num_classes=2, description="tiny images")
    spec = ExperimentSpec.model_validate(
        {
            "name": "norms-recorded",
            "model": {
                "input_shape": [6, 6, 1],
                "layers": [
                    {"type": "conv2d", "name": "conv", "filters": 4, "kernel_size": 3, "activation": "relu"},
                    {"type": "flatten", "name": "flat"},
                    {"type": "dense", "name": "hidden", "units": 4, "activation": "relu"},
                    {"type": "dense", "name": "out", "units": 2},
                ],
            },
            "dataset": {"name": "npz", "path": "unused.npz"},
            "training": {"loss": "crossentropy", "epochs": 1, "batch_size": 24},
            "pruning": {
                "criterion": "apoz",
                "rules": [{"layers": ["conv"], "criterion": {"type": "weight_norm", "norm": "l2"}}],
                "max_cycles": 1,
            },
        }
    )
    kernels = _Kernels()
    run_cycles(spec, data, kernels)
    (result, kernel), *_ = kernels.cycles
    norms = np.sqrt((kernel.astype(np.float64) ** 2).sum(axis=(0, 1, 2)))
    assert set(result.scores) == {"conv"}  # "hidden" is pruned by APoZ: no weight scores
    np.testing.assert_allclose(result.scores["conv"], norms, rtol=1e-6)

    rows = {row.layer: row for row in cycle_row(result).layers}
    assert rows["hidden"].scores is None
    assert rows["conv"].scores is not None
    np.testing.assert_allclose(decode("scores", rows["conv"].scores), norms, rtol=1e-6)
