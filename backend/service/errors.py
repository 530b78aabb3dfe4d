"""Domain failures the service raises; ``backend.api.errors`` maps each to one HTTP status.

The service never speaks HTTP: it raises one of these, and the API turns it into a response in a
single exception handler. Every message is written for the person who sent the request.
"""

from __future__ import annotations

from collections.abc import Sequence


class DomainError(Exception):
    """Base of every failure the service reports to a caller.

    Attributes:
        message: what went wrong and, where it helps, what to do about it.
    """

    #: a short machine-readable name for the failure, sent beside the message.
    code = "error"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    """The thing asked for does not exist (or no longer does).

    Args:
        kind: what was looked up, e.g. ``"experiment"``.
        key: how it was looked up, e.g. the id.
    """

    code = "not_found"

    def __init__(self, kind: str, key: object):
        super().__init__(f"{kind} {key} does not exist")
        self.kind = kind
        self.key = key


class Conflict(DomainError):
    """The request is well formed but the thing's current state forbids it (e.g. deleting a running
    experiment)."""

    code = "conflict"


class InvalidInput(DomainError):
    """The request is well formed JSON but a field's value is not acceptable.

    Args:
        field: the path of the offending field inside the request body, e.g. ``("spec", "dataset")``.
        message: why the value is not acceptable.
    """

    code = "invalid_input"

    def __init__(self, field: Sequence[str | int], message: str):
        super().__init__(message)
        self.field = tuple(field)


class QueueUnavailable(DomainError):
    """The experiment could not be handed to the workers (the broker is down or refused it)."""

    code = "queue_unavailable"
