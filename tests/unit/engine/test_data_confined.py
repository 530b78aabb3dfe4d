"""The worker opens a spec's .npz only inside the data directories, and its messages name no directory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from prunespec.datapaths import OUTSIDE_DATA_DIRS
from prunespec.spec import ImageDataset, NpzDataset
from worker.engine.data import DatasetError, load_dataset


def _save(path: Path) -> Path:
    zeros = np.zeros((4, 2))
    np.savez(path, x_train=zeros, y_train=np.arange(4) % 2, x_test=zeros, y_test=np.arange(4) % 2)
    return path


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "data"
    (directory / "mine").mkdir(parents=True)
    _save(directory / "mine" / "d.npz")
    (directory / "g.npz").write_bytes(b"garbage")
    return directory


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A readable .npz outside the data directory."""
    directory = tmp_path / "secret"
    directory.mkdir()
    return _save(directory / "s.npz")


def _refusal(raw: str, data_dir: Path) -> str:
    with pytest.raises(DatasetError) as refused:
        load_dataset(NpzDataset(path=raw), seed=0, data_dirs=[data_dir])
    return str(refused.value)


def test_a_path_inside_the_data_directory_loads_and_is_described_as_written(data_dir: Path) -> None:
    data = load_dataset(NpzDataset(path="mine/d.npz"), seed=0, data_dirs=[Path("/nonexistent"), data_dir])
    assert data.x_train.shape == (4, 2) and data.num_classes == 2
    assert data.description.endswith("from mine/d.npz") and str(data_dir) not in data.description


def test_a_readable_npz_outside_the_data_directory_is_not_opened(data_dir: Path, secret: Path) -> None:
    (data_dir / "link.npz").symlink_to(secret)
    answers = {
        _refusal(raw, data_dir)
        for raw in (
            str(secret),
            str(secret.parent / "nothing.npz"),
            "../secret/s.npz",
            "~/s.npz",
            "link.npz",
            str(data_dir / "mine" / "d.npz"),  # absolute, even inside
        )
    }
    assert answers == {f"dataset.path: {OUTSIDE_DATA_DIRS}"}


def test_failures_inside_the_data_directory_name_the_path_as_written_only(data_dir: Path) -> None:
    missing = _refusal("mine/nothing.npz", data_dir)
    garbage = _refusal("g.npz", data_dir)
    assert missing.startswith("dataset.path: mine/nothing.npz does not exist in the server's data directory")
    assert garbage.startswith("g.npz: not a readable .npz file")
    assert str(data_dir) not in missing + garbage and str(data_dir.parent) not in missing + garbage


def test_a_local_run_still_reads_an_absolute_path(secret: Path, data_dir: Path) -> None:
    data = load_dataset(NpzDataset(path=str(secret)), seed=0, data_dirs=[data_dir], local_paths=True)
    assert data.x_train.shape == (4, 2)


def test_image_datasets_name_no_server_directory(tmp_path: Path, data_dir: Path) -> None:
    empty = tmp_path / "empty"
    with pytest.raises(DatasetError) as missing:
        load_dataset(ImageDataset(name="mnist"), seed=0, data_dirs=[empty, data_dir])
    assert "<data directory 1>" in str(missing.value) and "<data directory 2>" in str(missing.value)
    assert str(tmp_path) not in str(missing.value)
    images = np.zeros((5, 28, 28), np.uint8)
    labels = np.arange(5) % 10
    np.savez(data_dir / "mnist.npz", x_train=images, y_train=labels, x_test=images, y_test=labels)
    data = load_dataset(ImageDataset(name="mnist"), seed=0, data_dirs=[empty, data_dir])
    assert data.description.endswith("from <data directory 2>/mnist.npz")
