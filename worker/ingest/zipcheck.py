"""Checks on a zip container (a .keras or .npz file) made from its directory alone, before extraction."""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath

from worker.ingest.errors import Refused
from worker.ingest.limits import IngestLimits


def safe_entry_name(name: str) -> bool:
    """Whether a zip entry's name stays inside the archive: relative, no ``..``, no drive or backslash."""
    if not name or name.startswith(("/", "\\")) or "\\" in name or ":" in name or "\x00" in name:
        return False
    return ".." not in PurePosixPath(name).parts


def check_zip(path: Path, limits: IngestLimits, what: str) -> list[zipfile.ZipInfo]:
    """The entries of a zip file, refused unless every bound holds.

    Args:
        path: the uploaded file.
        limits: entry count, total uncompressed size and compression ratio.
        what: how messages name the file (``.keras file``, ``.npz file``).

    Returns:
        The entries, in the archive's order.

    Raises:
        Refused: empty, not a zip, truncated, too many entries, an unsafe name, too large extracted, or
            compressed beyond the ratio (a zip bomb).
    """
    size = path.stat().st_size
    if size == 0:
        raise Refused(f"the {what} is empty (0 bytes)")
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        raise Refused(f"the {what} is not a readable zip archive (truncated or corrupt: {exc})") from None
    if len(entries) > limits.max_entries:
        raise Refused(f"the {what} holds {len(entries)} entries; at most {limits.max_entries} are allowed")
    total = 0
    for entry in entries:
        if not safe_entry_name(entry.filename):
            raise Refused(f"the {what} has an entry named {entry.filename!r} that leaves the archive")
        if entry.flag_bits & 0x1:
            raise Refused(f"the {what} has an encrypted entry {entry.filename!r}")
        total += entry.file_size
        ratio = entry.file_size / max(entry.compress_size, 1)
        if entry.file_size > 1024 and ratio > limits.max_ratio:
            raise Refused(
                f"the {what}'s entry {entry.filename!r} expands {ratio:,.0f}"
                f" times (at most {limits.max_ratio:,.0f}): a zip bomb is refused"
            )
    if total > limits.max_uncompressed_bytes:
        raise Refused(
            f"the {what} holds {total:,} bytes once extracted; at most {limits.max_uncompressed_bytes:,} "
            "are allowed"
        )
    return entries
