"""Shared test setup: quiet TensorFlow, the shared real MNIST test-set files, and a garbage collector that
skips what outlives a test module."""

from __future__ import annotations

import gc
import os
from collections.abc import Generator
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


# ------------------------------------------------------------------------------------- garbage collection
# The test process holds millions of long-lived objects (TensorFlow, Keras, FastAPI, the test modules,
# session fixtures) and every full collection walks them all; TensorFlow's tracing and TFLite conversion
# set off many collections (a conversion takes about three times as long beside a large heap). So what
# is alive once collection ends, and again after each test module's teardown (its garbage collected
# first), moves to the permanent generation (``gc.freeze``); each test's own objects are collected as
# usual. Nothing a test asserts changes; objects that outlive a module are not reclaimed by the cyclic
# collector until the session ends (reference counting still frees them).


def _collect_and_freeze() -> None:
    gc.collect()
    gc.freeze()


def pytest_collection_finish(session: pytest.Session) -> None:
    _collect_and_freeze()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, None, None]:
    result = yield  # the item's fixtures are torn down, its module's too when ``nextitem`` is elsewhere
    if nextitem is None or getattr(nextitem, "module", None) is not getattr(item, "module", None):
        _collect_and_freeze()
    return result
