"""The generated ``sum`` dataset: pairs of numbers and their sum."""

from __future__ import annotations

import numpy as np

from prunespec.spec import SumDataset
from worker.engine.data.types import Dataset


def _sum_dataset(spec: SumDataset, seed: int) -> Dataset:
    seed = spec.seed if spec.seed is not None else seed
    rng = np.random.default_rng(seed)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        if spec.distribution == "uniform":
            x = rng.uniform(spec.low, spec.high, size=(n, 2))
        else:
            x = rng.normal(spec.mean, spec.std, size=(n, 2))
        x32 = x.astype(np.float32)
        return x32, (x32[:, 0] + x32[:, 1]).reshape(n, 1)

    x_train, y_train = draw(spec.train_samples)
    x_test, y_test = draw(spec.test_samples)
    if spec.distribution == "uniform":
        law = f"uniform[{spec.low:g}, {spec.high:g})"
    else:
        law = f"normal(mean {spec.mean:g}, std {spec.std:g})"
    description = f"sum ({spec.train_samples}/{spec.test_samples}, x ~ {law}, seed {seed}) generated"
    return Dataset(x_train, y_train, x_test, y_test, None, description)
