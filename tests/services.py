"""The tests use real services (PostgreSQL, Redis, Chromium). When one is missing, a workstation skips
the tests that need it, with the reason; CI (``CI`` set) fails them instead."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """True when running in CI, where a missing service is a failure rather than a skip."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing_service(problem: str) -> NoReturn:
    """Fail (in CI) or skip (elsewhere) the test that needs the service ``problem`` describes.

    Raises:
        pytest.fail.Exception: in CI.
        pytest.skip.Exception: outside CI.
    """
    if in_ci():
        pytest.fail(f"{problem} (CI requires it)")
    pytest.skip(problem)
