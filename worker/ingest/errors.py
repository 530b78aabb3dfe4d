"""The one failure of ingest: an uploaded file refused, with the reason a user can act on."""

from __future__ import annotations


class Refused(ValueError):
    """An uploaded file is refused.

    Args:
        problem: what is wrong, naming the layer, key or entry (never a server path).
        field: which part of the upload it concerns (``file`` by default).
    """

    def __init__(self, problem: str, field: str = "file"):
        super().__init__(problem)
        self.problem = problem
        self.field = field
