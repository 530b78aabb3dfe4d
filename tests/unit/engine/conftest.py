"""Engine test fixtures: the presets with random weights, each converted to TFLite once per session."""

from __future__ import annotations

import pytest
from converted_presets import ConvertedPresets


@pytest.fixture(scope="session")
def converted_presets() -> ConvertedPresets:
    """The session's presets with random weights and their flatbuffers, converted on demand."""
    return ConvertedPresets()
