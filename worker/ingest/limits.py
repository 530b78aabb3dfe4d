"""How much an uploaded file may ask of the process that reads it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class IngestLimits:
    """Bounds on one uploaded file, checked before anything is extracted or loaded.

    Attributes:
        max_entries: most entries in the zip container. Default 64.
        max_uncompressed_bytes: most bytes all entries may hold once extracted. Default 4 GiB.
        max_ratio: most uncompressed bytes per compressed byte of one entry (zip bombs). Default 200.
        max_array_elements: most elements of one array (from its header). Default 2e9.
        max_parameters: most weights a model may hold (from its config). Default 5e7.
        max_layers: most layers in a model's config. Default 1,000.
    """

    max_entries: int = 64
    max_uncompressed_bytes: int = 4 << 30
    max_ratio: float = 200.0
    max_array_elements: int = 2_000_000_000
    max_parameters: int = 50_000_000
    max_layers: int = 1000

    def to_dict(self) -> dict[str, Any]:
        """The limits as plain data (they cross to the subprocess as JSON)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IngestLimits:
        """Limits from :meth:`to_dict`'s output (unknown keys refused by the constructor)."""
        return cls(**data)
