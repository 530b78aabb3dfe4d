"""Engine test fixtures: the presets with random weights, each converted to TFLite once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from converted_presets import ConvertedPresets
from services import missing_service

from worker.engine import fold_kernel


@pytest.fixture(scope="session")
def converted_presets() -> ConvertedPresets:
    """The session's presets with random weights and their flatbuffers, converted on demand."""
    return ConvertedPresets()


@pytest.fixture(params=["kernel", "xla"])
def folding(request: pytest.FixtureRequest) -> Iterator[str]:
    """Runs a test with each way the statistics pass reduces its steps on a CPU: the C kernel (built
    with the package; a CI run without it fails) and XLA (where it was not built)."""
    if request.param == "kernel":
        _require_fold_kernel()
        yield "kernel"
    else:
        with fold_kernel.switched_off():
            yield "xla"


@pytest.fixture
def built_fold_kernel() -> None:
    """Skips a test where the C kernel was not built (no compiler at install); in CI, fails it."""
    _require_fold_kernel()


def _require_fold_kernel() -> None:
    if not fold_kernel.available():
        missing_service("worker/engine/fold_rows.c was not built by the install (no C compiler?)")
