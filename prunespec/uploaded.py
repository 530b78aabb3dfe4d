"""Uploads a spec names by id: how a request's spec reads the uploaded model's layers and checks a data set.

A spec may say ``model: {uploaded: 12, weights: trained}`` or ``dataset: {name: npz, id: 7}``. Only the
server knows what id 12 holds and whether the caller may use it, so it sets an :class:`UploadResolver`
for the time a request is served (:func:`resolving_with`); without one (a local run, a stored spec that
was resolved when it was submitted) an id that needs resolving is refused. Pure Python: no database here.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class UploadedModelRecord:
    """What an uploaded model is: its spec (as stored in the summary) and the SHA-256 of its bytes."""

    spec: dict[str, Any]
    sha256: str


@dataclass(frozen=True)
class UploadedDataRecord:
    """What an uploaded data set holds: its SHA-256, input and target shapes, and class count if labels."""

    sha256: str
    input_shape: tuple[int, ...]
    target_shape: tuple[int, ...]
    classes: int | None


class UploadResolver(Protocol):
    """Reads uploads the caller may use; raises ValueError naming the id otherwise."""

    def model(self, upload_id: int) -> UploadedModelRecord: ...

    def dataset(self, upload_id: int) -> UploadedDataRecord: ...


_RESOLVER: contextvars.ContextVar[UploadResolver | None] = contextvars.ContextVar(
    "prunelab_upload_resolver", default=None
)


def set_resolver(resolver: UploadResolver | None) -> None:
    """Resolve ids with ``resolver`` in the current context (a request's task)."""
    _RESOLVER.set(resolver)


@contextmanager
def resolving_with(resolver: UploadResolver | None) -> Iterator[None]:
    """Resolve ids with ``resolver`` inside the block."""
    token = _RESOLVER.set(resolver)
    try:
        yield
    finally:
        _RESOLVER.reset(token)


def current_resolver() -> UploadResolver | None:
    """The resolver of the current context, if any."""
    return _RESOLVER.get()


def resolve_model(upload_id: int) -> UploadedModelRecord:
    """The uploaded model ``upload_id``.

    Raises:
        ValueError: no resolver here (only the server knows uploads), or the resolver refuses the id.
    """
    resolver = _RESOLVER.get()
    if resolver is None:
        raise ValueError(
            f"uploaded model {upload_id} can only be used through the server (prunelab submit), which "
            "knows its uploads"
        )
    return resolver.model(upload_id)


def resolve_dataset(upload_id: int) -> UploadedDataRecord | None:
    """The uploaded data set ``upload_id``, or None where no resolver is set (checked by the worker).

    Raises:
        ValueError: the resolver refuses the id.
    """
    resolver = _RESOLVER.get()
    return None if resolver is None else resolver.dataset(upload_id)
