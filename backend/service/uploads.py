"""Uploaded models and data sets: stored by content hash, listed, read, used by id, deleted, downloaded.

The bytes live in the database beside experiments' artifacts (the store workers already read), one row per
project, kind and SHA-256: the same bytes uploaded again return the existing row. What a file holds is read
by the ingest subprocess (``backend.service.uploads_ingest``) before anything is stored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Text, cast, select
from sqlalchemy.orm import Session, sessionmaker

from backend.auth.roles import Identity, Role
from backend.db import session_scope
from backend.models import Experiment, Upload, UploadKind
from backend.schemas import API_PREFIX
from backend.schemas_uploads import UploadDetail, UploadOut
from backend.service.errors import Conflict, InvalidInput, NotFound
from prunespec.uploaded import UploadedDataRecord, UploadedModelRecord

#: Where each kind's routes live (``/api/models``, ``/api/datasets``).
ROUTE_OF = {UploadKind.model: "models", UploadKind.dataset: "datasets"}
KERAS_MEDIA_TYPE = "application/x-keras"
NPZ_MEDIA_TYPE = "application/octet-stream"
_CHUNK = 1 << 20
#: Largest file the database stores in one row (SQLite's default blob limit is 1e9 bytes; PostgreSQL's
#: bytea 1 GiB): a larger upload is refused with a message instead of failing the insert.
MAX_STORED_BYTES = 900_000_000


@dataclass(frozen=True)
class Uploader:
    """Who stores an upload, and in which project."""

    name: str
    user_id: int | None
    project_id: int


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def upload_out(row: Upload, *, existing: bool = False) -> UploadOut:
    """A row as the API sends it."""
    kind = UploadKind(row.kind)
    return UploadOut(
        id=row.id,
        kind=kind.value,
        name=row.name,
        notes=row.notes,
        filename=row.filename,
        size_bytes=row.size_bytes,
        sha256=row.sha256,
        project_id=row.project_id,
        owner=row.owner,
        created_at=row.created_at,
        summary=row.summary,
        existing=existing,
        download_url=f"{API_PREFIX}/{ROUTE_OF[kind]}/{row.id}/file",
    )


def find_stored(session: Session, kind: UploadKind, project_id: int, sha256: str) -> Upload | None:
    """The project's upload of this kind with these bytes, if there is one."""
    return session.scalar(
        select(Upload).where(
            Upload.project_id == project_id, Upload.kind == kind.value, Upload.sha256 == sha256
        )
    )


def store_upload(
    session: Session,
    kind: UploadKind,
    path: Path,
    *,
    filename: str,
    name: str,
    notes: str,
    summary: dict[str, Any],
    uploader: Uploader,
) -> UploadOut:
    """Store an inspected file, or return the project's row that already holds the same bytes.

    Args:
        session: the request's session.
        kind: model or dataset.
        path: the file to store.
        filename / name / notes: as uploaded (``name`` defaults to ``filename``).
        summary: what the ingest subprocess read.
        uploader: who, and the project it goes to.

    Returns:
        The upload (``existing`` True when the bytes were already there).

    Raises:
        InvalidInput: the file is larger than the store holds (:data:`MAX_STORED_BYTES`).
    """
    sha256 = file_sha256(path)
    found = find_stored(session, kind, uploader.project_id, sha256)
    if found is not None:
        return upload_out(found, existing=True)
    size = path.stat().st_size
    if size > MAX_STORED_BYTES:
        raise InvalidInput(
            ("body", "file"),
            f"the {kind.value} takes {size:,} bytes; the upload store holds files of at most "
            f"{MAX_STORED_BYTES:,}",
        )
    row = Upload(
        kind=kind.value,
        name=(name.strip() or filename)[:200],
        notes=notes,
        filename=filename[:200],
        media_type=KERAS_MEDIA_TYPE if kind is UploadKind.model else NPZ_MEDIA_TYPE,
        size_bytes=size,
        sha256=sha256,
        content=path.read_bytes(),
        summary=summary,
        project_id=uploader.project_id,
        owner_id=uploader.user_id,
        owner=uploader.name,
    )
    session.add(row)
    session.flush()
    return upload_out(row)


def _visible_row(session: Session, kind: UploadKind, upload_id: int, user: Identity) -> Upload:
    row = session.get(Upload, upload_id)
    if row is None or row.kind != kind.value or not user.sees(row.project_id):
        raise NotFound(f"uploaded {kind.value}", upload_id)
    return row


def list_uploads(session: Session, kind: UploadKind, user: Identity) -> list[UploadOut]:
    """The uploads of a kind the caller sees, newest first."""
    query = select(Upload).where(Upload.kind == kind.value).order_by(Upload.id.desc())
    if user.projects is not None:
        query = query.where(Upload.project_id.in_(user.projects))
    return [upload_out(row) for row in session.scalars(query)]


def experiments_using(session: Session, kind: UploadKind, upload_id: int) -> list[int]:
    """The ids of experiments whose specs use the upload (a text filter, then each spec read)."""
    marker = '"uploaded_model"' if kind is UploadKind.model else '"npz"'
    rows = session.execute(
        select(Experiment.id, Experiment.spec).where(cast(Experiment.spec, Text).like(f"%{marker}%"))
    )
    used = []
    for experiment_id, spec in rows:
        if not isinstance(spec, dict):
            continue
        if kind is UploadKind.model:
            reference = spec.get("uploaded_model") or {}
            hit = isinstance(reference, dict) and reference.get("id") == upload_id
        else:
            dataset = spec.get("dataset") or {}
            hit = (
                isinstance(dataset, dict) and dataset.get("name") == "npz" and dataset.get("id") == upload_id
            )
        if hit:
            used.append(int(experiment_id))
    return sorted(used)


def get_upload(session: Session, kind: UploadKind, upload_id: int, user: Identity) -> UploadDetail:
    """One upload and the experiments that use it.

    Raises:
        NotFound: no such upload of this kind, or outside the caller's projects.
    """
    row = _visible_row(session, kind, upload_id, user)
    return UploadDetail(**upload_out(row).model_dump(), used_by=experiments_using(session, kind, upload_id))


def delete_upload(session: Session, kind: UploadKind, upload_id: int, user: Identity) -> None:
    """Delete an upload: its uploader (a member of its project) or an admin, and only while unused.

    Raises:
        NotFound: the caller cannot see it.
        Conflict: an experiment's spec uses it (409, naming them).
        backend.auth.errors.Forbidden: they see it but may not delete it.
    """
    from backend.auth.errors import Forbidden

    row = _visible_row(session, kind, upload_id, user)
    if not user.is_admin:
        role = user.role_in(row.project_id)
        if (
            row.owner_id is None
            or row.owner_id != user.user_id
            or role is None
            or not role.at_least(Role.member)
        ):
            raise Forbidden(f"only its uploader or an admin may delete uploaded {kind.value} {upload_id}")
    used = experiments_using(session, kind, upload_id)
    if used:
        raise Conflict(
            f"uploaded {kind.value} {upload_id} is used by experiment(s) {used}; delete them first"
        )
    session.delete(row)


@dataclass(frozen=True)
class StoredFile:
    """An upload's bytes and how to send them."""

    content: bytes
    filename: str
    media_type: str
    sha256: str


def upload_file(session: Session, kind: UploadKind, upload_id: int, user: Identity) -> StoredFile:
    """The stored bytes of an upload the caller sees.

    Raises:
        NotFound: no such upload, or outside the caller's projects.
    """
    row = _visible_row(session, kind, upload_id, user)
    return StoredFile(row.content, row.filename, row.media_type, row.sha256)


def stored_bytes(session: Session, upload_id: int, kind: UploadKind) -> tuple[bytes, str]:
    """An upload's bytes and SHA-256 for a worker (no caller to check: the spec was checked at submit).

    Raises:
        NotFound: the upload is gone.
    """
    row = session.get(Upload, upload_id)
    if row is None or row.kind != kind.value:
        raise NotFound(f"uploaded {kind.value}", upload_id)
    return row.content, row.sha256


class UploadResolver:
    """Resolves a request's upload ids to what they hold, for the caller only (``prunespec.uploaded``).

    Args:
        sessions: opens a short session per lookup.
        caller: who is asking (called on first use, so requests that name no upload never look).
    """

    def __init__(self, sessions: sessionmaker[Session], caller: Callable[[], Identity]):
        self.sessions = sessions
        self.caller = caller

    def _row(self, kind: UploadKind, upload_id: int) -> Upload:
        user = self.caller()
        with session_scope(self.sessions) as session:
            row = session.get(Upload, upload_id)
            if row is None or row.kind != kind.value or not user.sees(row.project_id):
                raise ValueError(f"there is no uploaded {kind.value} {upload_id} you can use")
            session.expunge(row)
            return row

    def model(self, upload_id: int) -> UploadedModelRecord:
        row = self._row(UploadKind.model, upload_id)
        return UploadedModelRecord(spec=dict(row.summary["spec"]), sha256=row.sha256)

    def dataset(self, upload_id: int) -> UploadedDataRecord:
        row = self._row(UploadKind.dataset, upload_id)
        summary = row.summary
        return UploadedDataRecord(
            sha256=row.sha256,
            input_shape=tuple(int(d) for d in summary["input_shape"]),
            target_shape=tuple(int(d) for d in summary["target_shape"]),
            classes=summary.get("classes"),
        )
