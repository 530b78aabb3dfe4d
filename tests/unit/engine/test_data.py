"""Datasets: generated sums, MNIST from IDX files or Keras's npz, user npz files, fitting to a model."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from prunespec.layers import ModelSpec
from prunespec.presets import preset
from prunespec.spec import ImageDataset, NpzDataset, SumDataset
from worker.engine.data import (
    Dataset,
    DatasetError,
    available_datasets,
    default_data_dirs,
    fit_to_model,
    load_dataset,
)

# tests/unit/engine/test_data.py -> parents[3] is the repo root (/work/main); the shared data sits beside it.
REPO_ROOT = Path(__file__).resolve().parents[3]
T10K_DIR = REPO_ROOT.parent / "shared" / "datasets" / "mnist-t10k"
IDX_NAMES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def _write_idx(
    folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray, image_magic: int = 2051
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    n = images.shape[0]
    with gzip.open(folder / f"{prefix}-images-idx3-ubyte.gz", "wb") as handle:
        handle.write(struct.pack(">iiii", image_magic, n, 28, 28) + images.astype(np.uint8).tobytes())
    with gzip.open(folder / f"{prefix}-labels-idx1-ubyte.gz", "wb") as handle:
        handle.write(struct.pack(">ii", 2049, n) + labels.astype(np.uint8).tobytes())


def _images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8), rng.integers(0, 10, size=n, dtype=np.uint8)


def _raw_t10k() -> tuple[np.ndarray, np.ndarray]:
    """An independent parse of the shared t10k files (fixed offsets, no header checks)."""
    images = np.frombuffer(
        gzip.decompress((T10K_DIR / "t10k-images-idx3-ubyte.gz").read_bytes())[16:], np.uint8
    )
    labels = np.frombuffer(
        gzip.decompress((T10K_DIR / "t10k-labels-idx1-ubyte.gz").read_bytes())[8:], np.uint8
    )
    return images.reshape(-1, 28, 28), labels


@pytest.fixture(scope="module")
def t10k() -> Dataset:
    assert (T10K_DIR / "t10k-images-idx3-ubyte.gz").is_file(), (
        f"shared MNIST t10k files missing in {T10K_DIR}"
    )
    return load_dataset(ImageDataset(name="mnist"), seed=0, data_dirs=[T10K_DIR], local_paths=True)


# --------------------------------------------------------------------------------------------- sum


def test_sum_is_deterministic_and_train_test_are_independent() -> None:
    spec = SumDataset(train_samples=500, test_samples=200)
    a = load_dataset(spec, seed=3)
    b = load_dataset(spec, seed=3)
    c = load_dataset(spec, seed=4)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.x_test, b.x_test)
    assert not np.array_equal(a.x_train, c.x_train)
    assert not np.array_equal(a.x_train[:200], a.x_test)
    assert a.x_train.shape == (500, 2) and a.x_test.shape == (200, 2)
    assert a.num_classes is None


def test_sum_spec_seed_overrides_the_argument() -> None:
    spec = SumDataset(train_samples=50, test_samples=10, seed=11)
    np.testing.assert_array_equal(load_dataset(spec, seed=1).x_train, load_dataset(spec, seed=2).x_train)
    unseeded = SumDataset(train_samples=50, test_samples=10)
    np.testing.assert_array_equal(load_dataset(spec, seed=1).x_train, load_dataset(unseeded, seed=11).x_train)


def test_sum_targets_are_x1_plus_x2() -> None:
    data = load_dataset(SumDataset(train_samples=300, test_samples=100), seed=0)
    for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
        assert x.dtype == np.float32 and y.dtype == np.float32
        assert y.shape == (x.shape[0], 1)
        np.testing.assert_array_equal(y[:, 0], x[:, 0] + x[:, 1])


def test_sum_distributions() -> None:
    uniform = load_dataset(SumDataset(train_samples=20_000, test_samples=10, low=-3.0, high=5.0), seed=0)
    assert uniform.x_train.min() >= -3.0 and uniform.x_train.max() < 5.0
    assert abs(float(uniform.x_train.mean()) - 1.0) < 0.1
    normal = load_dataset(
        SumDataset(train_samples=20_000, test_samples=10, distribution="normal", mean=10.0, std=2.0), seed=0
    )
    assert abs(float(normal.x_train.mean()) - 10.0) < 0.1
    assert abs(float(normal.x_train.std()) - 2.0) < 0.1
    assert "normal" in normal.description and "uniform" in uniform.description


# --------------------------------------------------------------------------------------------- mnist t10k


def test_t10k_split_shapes_dtypes_and_range(t10k: Dataset) -> None:
    assert t10k.x_train.shape == (8000, 28, 28, 1) and t10k.x_test.shape == (2000, 28, 28, 1)
    assert t10k.y_train.shape == (8000,) and t10k.y_test.shape == (2000,)
    assert t10k.x_train.dtype == np.float32 and t10k.y_train.dtype == np.int64
    assert float(t10k.x_train.min()) == 0.0 and float(t10k.x_train.max()) == 1.0
    assert set(np.unique(t10k.y_train)) == set(range(10))
    assert t10k.num_classes == 10
    assert "t10k split 8000/2000" in t10k.description and str(T10K_DIR) in t10k.description


def test_t10k_matches_an_independent_parse(t10k: Dataset) -> None:
    images, labels = _raw_t10k()
    assert list(t10k.y_train[:10]) == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]  # the published first test labels
    np.testing.assert_array_equal(t10k.y_train, labels[:8000])
    np.testing.assert_array_equal(t10k.y_test, labels[8000:])
    for index, row, col in ((0, 14, 14), (1, 10, 12), (123, 20, 7)):
        assert t10k.x_train[index, row, col, 0] == np.float32(images[index, row, col]) / np.float32(255)
    np.testing.assert_array_equal(np.round(t10k.x_test[:, :, :, 0] * 255).astype(np.uint8), images[8000:])


def test_image_subsets_and_too_many_samples() -> None:
    data = load_dataset(
        ImageDataset(name="mnist", train_samples=100, test_samples=30), seed=0, data_dirs=[T10K_DIR]
    )
    assert data.x_train.shape[0] == 100 and data.x_test.shape[0] == 30 and data.y_test.shape == (30,)
    _, labels = _raw_t10k()
    np.testing.assert_array_equal(data.y_test, labels[8000:8030])
    with pytest.raises(DatasetError, match=r"train_samples is 9000 .* only 8000"):
        load_dataset(ImageDataset(name="mnist", train_samples=9000), seed=0, data_dirs=[T10K_DIR])
    with pytest.raises(DatasetError, match=r"test_samples is 2001 .* only 2000"):
        load_dataset(ImageDataset(name="mnist", test_samples=2001), seed=0, data_dirs=[T10K_DIR])


def test_image_target_input_is_reconstruction() -> None:
    data = load_dataset(
        ImageDataset(name="mnist", target="input", train_samples=20, test_samples=5),
        seed=0,
        data_dirs=[T10K_DIR],
    )
    assert data.num_classes is None
    np.testing.assert_array_equal(data.y_train, data.x_train)
    assert data.y_test.shape == (5, 28, 28, 1) and data.y_test.dtype == np.float32


# --------------------------------------------------------------------------------------------- tmp files


def test_four_idx_files_load_as_full_train_and_test(tmp_path: Path) -> None:
    train_x, train_y = _images(12, seed=1)
    test_x, test_y = _images(5, seed=2)
    _write_idx(tmp_path, "train", train_x, train_y)
    _write_idx(tmp_path, "t10k", test_x, test_y)
    data = load_dataset(ImageDataset(name="mnist"), seed=0, data_dirs=[tmp_path])
    assert data.x_train.shape == (12, 28, 28, 1) and data.x_test.shape == (5, 28, 28, 1)
    np.testing.assert_array_equal(data.y_train, train_y.astype(np.int64))
    np.testing.assert_array_equal(data.y_test, test_y.astype(np.int64))
    np.testing.assert_allclose(data.x_test[..., 0], test_x / 255.0, rtol=1e-6)
    assert "t10k split" not in data.description


def test_small_t10k_pair_is_split_80_20(tmp_path: Path) -> None:
    images, labels = _images(10, seed=3)
    _write_idx(tmp_path, "t10k", images, labels)
    data = load_dataset(ImageDataset(name="mnist"), seed=0, data_dirs=[tmp_path])
    np.testing.assert_array_equal(data.y_train, labels[:8])
    np.testing.assert_array_equal(data.y_test, labels[8:])
    assert "t10k split 8/2" in data.description


def test_fashion_mnist_from_keras_subfolder(tmp_path: Path) -> None:
    images, labels = _images(6, seed=4)
    _write_idx(tmp_path / "fashion-mnist", "train", images, labels)
    _write_idx(tmp_path / "fashion-mnist", "t10k", images[:2], labels[:2])
    data = load_dataset(
        ImageDataset(name="fashion-mnist"),
        seed=0,
        data_dirs=[tmp_path / "nothing", tmp_path],
        local_paths=True,
    )
    np.testing.assert_array_equal(data.y_train, labels)
    assert str(tmp_path / "fashion-mnist") in data.description
    with pytest.raises(DatasetError, match="mnist: no data files found"):
        load_dataset(ImageDataset(name="mnist"), seed=0, data_dirs=[tmp_path])


def test_loose_idx_files_are_mnist_not_fashion() -> None:
    with pytest.raises(DatasetError) as info:
        load_dataset(ImageDataset(name="fashion-mnist"), seed=0, data_dirs=[T10K_DIR], local_paths=True)
    assert str(T10K_DIR / "fashion-mnist") in str(info.value)
    assert "loose IDX files in a data directory are read as MNIST" in str(info.value)


def test_keras_mnist_npz(tmp_path: Path) -> None:
    train_x, train_y = _images(7, seed=5)
    test_x, test_y = _images(3, seed=6)
    np.savez(tmp_path / "mnist.npz", x_train=train_x, y_train=train_y, x_test=test_x, y_test=test_y)
    data = load_dataset(ImageDataset(name="mnist"), seed=0, data_dirs=[tmp_path], local_paths=True)
    assert data.x_train.shape == (7, 28, 28, 1) and data.x_train.dtype == np.float32
    assert data.y_test.dtype == np.int64
    np.testing.assert_array_equal(data.y_test, test_y)
    np.testing.assert_allclose(data.x_train[..., 0], train_x / 255.0, rtol=1e-6)
    assert str(tmp_path / "mnist.npz") in data.description


def test_first_data_dir_wins(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    images, labels = _images(10, seed=7)
    _write_idx(first, "t10k", images, labels)
    _write_idx(second, "t10k", images[:5], labels[:5])
    assert load_dataset(ImageDataset(name="mnist"), seed=0, data_dirs=[first, second]).x_train.shape[0] == 8
    assert load_dataset(ImageDataset(name="mnist"), seed=0, data_dirs=[second, first]).x_train.shape[0] == 4


def test_a_local_runs_missing_files_message_names_files_and_dirs(tmp_path: Path) -> None:
    dirs = [tmp_path / "one", tmp_path / "two"]
    with pytest.raises(DatasetError) as info:
        load_dataset(ImageDataset(name="mnist"), seed=0, data_dirs=dirs, local_paths=True)
    message = str(info.value)
    for expected in (str(dirs[0]), str(dirs[1]), "mnist.npz", *IDX_NAMES, "never downloads"):
        assert expected in message
    with pytest.raises(DatasetError) as info:
        load_dataset(ImageDataset(name="fashion-mnist"), seed=0, data_dirs=dirs, local_paths=True)
    assert str(dirs[0] / "fashion-mnist") in str(info.value) and "mnist.npz" not in str(info.value)


def test_incomplete_idx_set_names_the_missing_file(tmp_path: Path) -> None:
    images, labels = _images(4, seed=8)
    _write_idx(tmp_path, "t10k", images, labels)
    _write_idx(tmp_path, "train", images, labels)
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetError, match=r"incomplete .*missing \['train-labels-idx1-ubyte.gz'\]"):
        load_dataset(ImageDataset(name="mnist"), seed=0, data_dirs=[tmp_path])


def test_bad_magic_names_the_file(tmp_path: Path) -> None:
    images, labels = _images(4, seed=9)
    _write_idx(tmp_path, "t10k", images, labels, image_magic=2049)
    with pytest.raises(DatasetError) as info:
        load_dataset(ImageDataset(name="mnist"), seed=0, data_dirs=[tmp_path])
    message = str(info.value)
    assert "t10k-images-idx3-ubyte.gz" in message and "2049" in message and "expected 2051" in message


def test_truncated_and_non_gzip_files_are_reported(tmp_path: Path) -> None:
    images, labels = _images(4, seed=10)
    _write_idx(tmp_path, "t10k", images, labels)
    with gzip.open(tmp_path / "t10k-labels-idx1-ubyte.gz", "wb") as handle:
        handle.write(struct.pack(">ii", 2049, 4) + bytes(3))
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte.gz: header promises 4 labels"):
        load_dataset(ImageDataset(name="mnist"), seed=0, data_dirs=[tmp_path])
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DatasetError, match="not a readable gzip file"):
        load_dataset(ImageDataset(name="mnist"), seed=0, data_dirs=[tmp_path])


# --------------------------------------------------------------------------------------------- npz


def test_npz_labels_values_and_input(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x_train, x_test = rng.normal(size=(20, 3)), rng.normal(size=(6, 3))
    np.savez(
        tmp_path / "d.npz", x_train=x_train, y_train=np.arange(20) % 4, x_test=x_test, y_test=np.arange(6) % 3
    )
    labels = load_dataset(NpzDataset(path=str(tmp_path / "d.npz")), seed=0, data_dirs=[], local_paths=True)
    assert labels.x_train.dtype == np.float32 and labels.y_train.dtype == np.int64
    assert labels.num_classes == 4
    np.testing.assert_allclose(labels.x_test, x_test.astype(np.float32))
    values = load_dataset(
        NpzDataset(path=str(tmp_path / "d.npz"), target="values"), seed=0, data_dirs=[], local_paths=True
    )
    assert (
        values.y_train.dtype == np.float32 and values.y_train.shape == (20, 1) and values.num_classes is None
    )
    recon = load_dataset(
        NpzDataset(path=str(tmp_path / "d.npz"), target="input", train_samples=5),
        seed=0,
        data_dirs=[],
        local_paths=True,
    )
    np.testing.assert_array_equal(recon.y_train, recon.x_train)
    assert recon.x_train.shape == (5, 3)
    with pytest.raises(DatasetError, match="test_samples is 7"):
        load_dataset(
            NpzDataset(path=str(tmp_path / "d.npz"), test_samples=7), seed=0, data_dirs=[], local_paths=True
        )


def test_a_local_npz_relative_path_resolves_against_the_first_data_dir(tmp_path: Path) -> None:
    zeros = np.zeros((2, 2))
    np.savez(tmp_path / "rel.npz", x_train=zeros, y_train=np.zeros(2), x_test=zeros, y_test=np.zeros(2))
    data = load_dataset(
        NpzDataset(path="rel.npz"), seed=0, data_dirs=[tmp_path, tmp_path / "other"], local_paths=True
    )
    assert data.x_train.shape == (2, 2)
    with pytest.raises(DatasetError, match=r"does not exist .*relative paths resolve against"):
        load_dataset(
            NpzDataset(path="rel.npz"), seed=0, data_dirs=[tmp_path / "other", tmp_path], local_paths=True
        )


def test_npz_missing_keys_are_named(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x_train=np.zeros((2, 2)), y_train=np.zeros(2), x=np.zeros(2))
    with pytest.raises(DatasetError, match=r"missing keys \['x_test', 'y_test'\]"):
        load_dataset(NpzDataset(path=str(tmp_path / "d.npz")), seed=0, data_dirs=[], local_paths=True)


def test_npz_object_array_is_refused(tmp_path: Path) -> None:
    objects = np.empty(2, dtype=object)
    objects[:] = [{"a": 1}, [2]]
    np.savez(
        tmp_path / "d.npz", x_train=objects, y_train=np.zeros(2), x_test=np.zeros((2, 1)), y_test=np.zeros(2)
    )
    with pytest.raises(DatasetError, match=r"'x_train' cannot be loaded without pickle"):
        load_dataset(NpzDataset(path=str(tmp_path / "d.npz")), seed=0, data_dirs=[], local_paths=True)


def test_npz_bad_labels_and_garbage_file(tmp_path: Path) -> None:
    zeros = np.zeros((3, 2))
    np.savez(
        tmp_path / "d.npz", x_train=zeros, y_train=np.array([0.5, 1, 2]), x_test=zeros, y_test=np.zeros(3)
    )
    with pytest.raises(DatasetError, match="non-integer values"):
        load_dataset(NpzDataset(path=str(tmp_path / "d.npz")), seed=0, data_dirs=[], local_paths=True)
    (tmp_path / "g.npz").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="not a readable .npz file"):
        load_dataset(NpzDataset(path=str(tmp_path / "g.npz")), seed=0, data_dirs=[], local_paths=True)


# --------------------------------------------------------------------------------------------- fit_to_model


def _tiny(
    y_train: np.ndarray, y_test: np.ndarray, num_classes: int | None, x_shape: tuple[int, ...]
) -> Dataset:
    return Dataset(
        np.zeros((len(y_train), *x_shape), np.float32),
        y_train,
        np.zeros((len(y_test), *x_shape), np.float32),
        y_test,
        num_classes,
        "tiny",
    )


def test_fit_reshapes_images_to_a_dense_input(t10k: Dataset) -> None:
    fitted = fit_to_model(t10k, preset("lenet-300-100"), "crossentropy")
    assert fitted.x_train.shape == (8000, 784) and fitted.x_test.shape == (2000, 784)
    np.testing.assert_array_equal(fitted.x_train[3], t10k.x_train[3].reshape(-1))
    assert fitted.y_train is t10k.y_train
    same = fit_to_model(t10k, preset("lenet-5"), "crossentropy")
    assert same.x_train is t10k.x_train


def test_fit_mismatch_names_both_shapes(t10k: Dataset) -> None:
    model = ModelSpec.model_validate({"input_shape": [100], "layers": [{"type": "dense", "units": 10}]})
    with pytest.raises(
        DatasetError, match=r"\(28, 28, 1\) \(784 values\) do not fit model.input_shape \(100,\)"
    ):
        fit_to_model(t10k, model, "crossentropy")
    sums = load_dataset(SumDataset(train_samples=4, test_samples=2), seed=0)
    wide = ModelSpec.model_validate({"input_shape": [2], "layers": [{"type": "dense", "units": 3}]})
    with pytest.raises(DatasetError, match=r"targets of shape \(1,\) .* output \(3,\)"):
        fit_to_model(sums, wide, "mse")
    assert fit_to_model(sums, preset("sum-mlp"), "mse").y_train.shape == (4, 1)


def test_fit_crossentropy_checks_label_range() -> None:
    model = ModelSpec.model_validate({"input_shape": [4], "layers": [{"type": "dense", "units": 3}]})
    ok = _tiny(np.array([0, 1, 2]), np.array([2, 0]), 3, (4,))
    assert fit_to_model(ok, model, "crossentropy").y_train.dtype == np.int64
    bad = _tiny(np.array([0, 1, 2]), np.array([3, 0]), 4, (4,))
    with pytest.raises(DatasetError, match=r"y_test holds class ids in \[0, 3\] .* \[0, 3\)"):
        fit_to_model(bad, model, "crossentropy")
    floats = _tiny(np.zeros((3, 3), np.float32), np.zeros((2, 3), np.float32), None, (4,))
    with pytest.raises(DatasetError, match="needs class labels"):
        fit_to_model(floats, model, "crossentropy")


def test_fit_labels_with_mse_become_one_hot() -> None:
    model = ModelSpec.model_validate({"input_shape": [4], "layers": [{"type": "dense", "units": 3}]})
    fitted = fit_to_model(_tiny(np.array([0, 2, 1]), np.array([1, 1]), 3, (4,)), model, "mse")
    np.testing.assert_array_equal(fitted.y_train, np.eye(3, dtype=np.float32)[[0, 2, 1]])
    assert fitted.y_train.dtype == np.float32


# --------------------------------------------------------------------------------------------- data dirs


def test_prunelab_data_dir_env_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PRUNELAB_DATA_DIR", str(T10K_DIR))
    assert default_data_dirs() == [T10K_DIR, tmp_path / "home" / ".keras" / "datasets"]
    data = load_dataset(
        ImageDataset(name="mnist", train_samples=10, test_samples=10), seed=0, local_paths=True
    )
    assert str(T10K_DIR) in data.description
    monkeypatch.setenv("PRUNELAB_DATA_DIR", str(tmp_path / "empty"))
    with pytest.raises(DatasetError, match=r"into \$PRUNELAB_DATA_DIR \(" + str(tmp_path / "empty")):
        load_dataset(ImageDataset(name="mnist"), seed=0, local_paths=True)
    monkeypatch.delenv("PRUNELAB_DATA_DIR")
    assert default_data_dirs() == [tmp_path / "home" / ".keras" / "datasets"]


def test_available_datasets(tmp_path: Path) -> None:
    assert available_datasets([tmp_path]) == {"sum": "generated"}
    found = available_datasets([tmp_path, T10K_DIR])
    assert set(found) == {"sum", "mnist"} and str(T10K_DIR) in found["mnist"] and "t10k" in found["mnist"]
