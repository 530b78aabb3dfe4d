"""Shared test setup: quiet TensorFlow, and the shared real MNIST test-set files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Before anything imports TensorFlow: keep its C++ start-up chatter out of test output.
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
# Starlette's TestClient sends ``Host: testserver``; the tests' settings allow it beside the defaults.
os.environ.setdefault("PRUNELAB_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"
MNIST_T10K_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


@pytest.fixture(scope="session")
def mnist_t10k_dir() -> Path:
    """The real MNIST test set (10,000 images, IDX, gzip) shared beside the project, never copied in.

    Returns:
        ``<repo root>/../shared/datasets/mnist-t10k``.

    Raises:
        pytest.fail: the directory or one of its two files is missing (tests must not download).
    """
    directory = SHARED_DIR / "datasets" / "mnist-t10k"
    missing = [name for name in MNIST_T10K_FILES if not (directory / name).is_file()]
    if missing:
        pytest.fail(
            f"MNIST t10k files missing from {directory}: {missing}. They are expected in "
            "../shared/datasets/mnist-t10k/ beside the project root (tests never download data)."
        )
    return directory
