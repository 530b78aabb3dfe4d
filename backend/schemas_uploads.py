"""The shapes of uploaded models and data sets as the API sends them (``/api/models``, ``/api/datasets``)."""

from __future__ import annotations

from typing import Any, Literal

from backend.schemas import Schema, UtcDatetime


class UploadOut(Schema):
    """An uploaded model or data set.

    Attributes:
        id: what a spec names it by (``model: {uploaded: ID}``, ``dataset: {name: npz, id: ID}``).
        kind: ``model`` or ``dataset``.
        name / notes: as given at upload (the name defaults to the file's).
        filename: the file's name as uploaded (a data set sent as IDX files: ``….npz``).
        size_bytes / sha256: of the stored bytes.
        project_id / owner: where it belongs, and who uploaded it.
        summary: a model's spec, input and output shapes, parameters, FLOPs, layers (each with whether it
            is prunable and why not); a data set's arrays (shape, dtype), examples, input and target
            shapes, classes or value range.
        existing: True when these bytes were already stored in the project (the same id is returned).
        download_url: where the stored file downloads.
    """

    id: int
    kind: Literal["model", "dataset"]
    name: str
    notes: str
    filename: str
    size_bytes: int
    sha256: str
    project_id: int
    owner: str
    created_at: UtcDatetime
    summary: dict[str, Any]
    existing: bool = False
    download_url: str


class UploadDetail(UploadOut):
    """One upload with the experiments whose specs use it (it cannot be deleted while any does)."""

    used_by: list[int]
