"""The installed prunelab version, read once from the package metadata."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def package_version() -> str:
    """The installed prunelab version (``0+unknown`` in a source tree that was never installed)."""
    try:
        return version("prunelab")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without installing
        return "0+unknown"
