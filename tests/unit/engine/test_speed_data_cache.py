"""A worker process loads a dataset once and reuses it, until its file changes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from prunespec.spec import NpzDataset, SumDataset
from worker.engine.data import DatasetError
from worker.engine.data.cache import MAX_ENTRIES, cached_dataset, clear_cache


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    clear_cache()
    yield
    clear_cache()


def _write_npz(path: Path, offset: float) -> None:
    rng = np.random.default_rng(0)
    np.savez(
        path,
        x_train=rng.normal(size=(20, 3)).astype("float32") + offset,
        y_train=rng.normal(size=(20,)).astype("float32"),
        x_test=rng.normal(size=(5, 3)).astype("float32"),
        y_test=rng.normal(size=(5,)).astype("float32"),
    )


def test_the_same_generated_set_is_loaded_once_and_cannot_be_changed() -> None:
    spec = SumDataset(train_samples=50, test_samples=10)
    first = cached_dataset(spec, seed=1)
    assert cached_dataset(spec, seed=1) is first
    assert cached_dataset(spec, seed=2) is not first  # the seed draws other numbers
    with pytest.raises(ValueError, match="read-only"):
        first.x_train[0, 0] = 5.0


def test_a_replaced_npz_file_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "data.npz"
    _write_npz(path, 0.0)
    spec = NpzDataset.model_construct(name="npz", path=str(path), target="values")
    first = cached_dataset(spec, seed=0, data_dirs=[tmp_path], local_paths=True)
    assert cached_dataset(spec, seed=0, data_dirs=[tmp_path], local_paths=True) is first
    _write_npz(path, 100.0)
    os.utime(path, ns=(1, 1))  # a different modification time, even on a coarse clock
    second = cached_dataset(spec, seed=0, data_dirs=[tmp_path], local_paths=True)
    np.testing.assert_allclose(second.x_train, first.x_train + 100.0, rtol=1e-6)


def test_only_a_few_datasets_are_kept() -> None:
    specs = [SumDataset(train_samples=20 + i, test_samples=5) for i in range(MAX_ENTRIES + 1)]
    first = cached_dataset(specs[0], seed=0)
    for spec in specs[1:]:
        cached_dataset(spec, seed=0)
    assert cached_dataset(specs[-1], seed=0) is cached_dataset(specs[-1], seed=0)
    assert cached_dataset(specs[0], seed=0) is not first  # the oldest went first


def test_a_missing_file_still_fails_with_the_loaders_message(tmp_path: Path) -> None:
    spec = NpzDataset.model_construct(name="npz", path="missing.npz", target="labels")
    with pytest.raises(DatasetError, match="does not exist"):
        cached_dataset(spec, seed=0, data_dirs=[tmp_path])
