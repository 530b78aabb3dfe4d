"""The ingest checks that need no Keras: the zip container, config.json as data, .npy headers, IDX files,
and the subprocess's own memory limit."""

from __future__ import annotations

import gzip
import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from backend.service.errors import InvalidInput
from backend.service.uploads_ingest import inspect_upload
from backend.settings import Settings
from worker.ingest.arrays import check_headers, idx_to_npz, inspect_npz, write_npz
from worker.ingest.errors import Refused
from worker.ingest.keras_config import parse_config
from worker.ingest.limits import IngestLimits
from worker.ingest.zipcheck import check_zip, safe_entry_name

LIMITS = IngestLimits()


def _zip(path: Path, entries: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return path


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("config.json", True),
        ("assets/a.txt", True),
        ("../x", False),
        ("a/../../x", False),
        ("/etc/passwd", False),
        ("C:evil", False),
        ("a\\..\\x", False),
        ("", False),
    ],
)
def test_entry_names_must_stay_inside_the_archive(name: str, safe: bool) -> None:
    assert safe_entry_name(name) is safe


def test_too_many_entries_and_too_many_bytes_are_refused_from_the_directory(tmp_path: Path) -> None:
    many = _zip(tmp_path / "many.zip", {f"{i}.npy": b"" for i in range(5)})
    with pytest.raises(Refused, match="holds 5 entries; at most 4"):
        check_zip(many, IngestLimits(max_entries=4), "x")
    big = _zip(tmp_path / "big.zip", {"a": b"1" * 5000})
    with pytest.raises(Refused, match="5,000 bytes once extracted; at most 4,096"):
        check_zip(big, IngestLimits(max_uncompressed_bytes=4096), "x")


def test_a_highly_compressed_entry_is_a_zip_bomb(tmp_path: Path) -> None:
    bomb = _zip(tmp_path / "bomb.zip", {"a": b"\0" * 1_000_000}, zipfile.ZIP_DEFLATED)
    with pytest.raises(Refused, match="zip bomb"):
        check_zip(bomb, LIMITS, "x")
    check_zip(bomb, IngestLimits(max_ratio=1e6), "x")  # the same file under a looser ratio passes


def test_a_lambda_deep_inside_a_functional_model_is_named_by_its_layer() -> None:
    inner = {"module": "keras.layers", "class_name": "Lambda", "config": {"name": "deep", "function": "x"}}
    config = {
        "module": "keras",
        "class_name": "Functional",
        "config": {
            "name": "f",
            "layers": [
                {
                    "module": "keras.layers",
                    "class_name": "Dense",
                    "config": {
                        "name": "d",
                        "units": 1,
                        "kernel_initializer": {
                            "module": "keras.initializers",
                            "class_name": "GlorotUniform",
                            "config": {},
                            "registered_name": None,
                        },
                    },
                },
                {
                    "module": "keras",
                    "class_name": "Sequential",
                    "config": {"name": "inner", "layers": [inner]},
                },
            ],
        },
    }
    with pytest.raises(Refused, match="layer 'deep': Lambda carries code"):
        parse_config(json.dumps(config).encode(), LIMITS)
    config["config"]["layers"].pop()
    assert parse_config(json.dumps(config).encode(), LIMITS)["class_name"] == "Functional"


def test_an_initializer_from_outside_keras_is_refused_naming_its_layer() -> None:
    layer = {
        "module": "keras.layers",
        "class_name": "Dense",
        "config": {
            "name": "d",
            "kernel_initializer": {"module": "builtins", "class_name": "eval", "config": {}},
        },
    }
    config = {"module": "keras", "class_name": "Sequential", "config": {"layers": [layer]}}
    with pytest.raises(Refused, match="layer 'd': class 'eval' comes from module 'builtins'"):
        parse_config(json.dumps(config).encode(), LIMITS)


def _arrays(**overrides: np.ndarray) -> dict[str, np.ndarray]:
    arrays = {
        "x_train": np.zeros((4, 2), np.float32),
        "y_train": np.array([0, 1, 2, 1]),
        "x_test": np.ones((2, 2), np.float32),
        "y_test": np.array([1, 0]),
    }
    return {**arrays, **overrides}


def test_npz_headers_refuse_complex_and_mismatched_shapes_before_loading(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    write_npz(path, _arrays(x_test=np.ones((2, 2), np.complex64)))
    with pytest.raises(Refused, match="array 'x_test' has dtype complex64"):
        check_headers(path, LIMITS)
    write_npz(path, _arrays(y_train=np.array([0, 1])))
    with pytest.raises(Refused, match="x_train and y_train need one example each"):
        check_headers(path, LIMITS)


def test_an_npz_summary_counts_examples_and_classes(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    write_npz(path, _arrays())
    summary = inspect_npz(path, LIMITS)
    assert (summary["train_examples"], summary["test_examples"], summary["classes"]) == (4, 2, 3)
    assert summary["input_shape"] == [2] and summary["arrays"]["x_train"] == {
        "shape": [4, 2],
        "dtype": "float32",
    }
    again = tmp_path / "again.npz"
    write_npz(again, _arrays())
    assert again.read_bytes() == path.read_bytes()  # equal data, equal bytes, equal hash


def _idx_images(path: Path, count: int, value: int) -> Path:
    content = struct.pack(">iiii", 2051, count, 2, 2) + bytes([value]) * (count * 4)
    path.write_bytes(gzip.compress(content))
    return path


def _idx_labels(path: Path, labels: list[int]) -> Path:
    path.write_bytes(struct.pack(">ii", 2049, len(labels)) + bytes(labels))
    return path


def test_four_idx_files_are_paired_by_their_names(tmp_path: Path) -> None:
    files = [
        _idx_images(tmp_path / "t10k-images.gz", 2, 255),
        _idx_labels(tmp_path / "t10k-labels", [3, 4]),
        _idx_images(tmp_path / "train-images.gz", 3, 0),
        _idx_labels(tmp_path / "train-labels", [0, 1, 2]),
    ]
    out = tmp_path / "out.npz"
    idx_to_npz(files, [f.name for f in files], out, LIMITS)
    with np.load(out) as data:
        assert data["x_train"].shape == (3, 2, 2, 1) and data["x_train"].max() == 0.0
        assert data["x_test"].shape == (2, 2, 2, 1) and data["x_test"].min() == 1.0
        assert data["y_test"].tolist() == [3, 4]


def test_idx_images_and_labels_that_do_not_pair_are_refused(tmp_path: Path) -> None:
    files = [_idx_images(tmp_path / "a.gz", 3, 1), _idx_labels(tmp_path / "b", [1, 2])]
    with pytest.raises(Refused, match="has 3 images but b has 2 labels"):
        idx_to_npz(files, ["a.gz", "b"], tmp_path / "out.npz", LIMITS)


def test_the_ingest_process_runs_under_its_memory_limit(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, **_arrays())
    starved = Settings(data_dir=tmp_path, upload_memory_mb=16)
    with pytest.raises(InvalidInput, match="memory"):
        inspect_upload(starved, "npz", [path], ["d.npz"])
    accepted = inspect_upload(Settings(data_dir=tmp_path), "npz", [path], ["d.npz"])
    assert accepted.summary["classes"] == 3
