"""Uploaded models (``/api/models``) and data sets (``/api/datasets``): upload, list, read, delete, download.

Uploads are ``multipart/form-data`` POSTs, the only ones this server takes (``backend.api.security``
lets them through on these two paths only, same-origin, with the CSRF header for browser sessions). The
body is capped while it streams in (``backend.api.body_limit``: ``max_model_upload_bytes``,
``max_data_upload_bytes``); the file is read by the ingest subprocess, never here.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Response, UploadFile, status
from fastapi import Path as PathParam
from sqlalchemy.orm import Session

from backend.api.artifacts import content_disposition
from backend.api.deps import DECIMAL_ID, ContextDep, SessionDep
from backend.auth.deps import AuditDep, AuditLog, CurrentUser, current_user
from backend.auth.errors import Forbidden
from backend.auth.projects import resolve_project
from backend.auth.roles import Role
from backend.models import UploadKind
from backend.schemas import MAX_ID, ErrorBody, ValidationErrorBody
from backend.schemas_uploads import UploadDetail, UploadOut
from backend.service import uploads
from backend.service.errors import InvalidInput
from backend.service.uploads_ingest import inspect_upload
from backend.settings import Settings

#: The paths uploads are POSTed to (``backend.api.security`` and ``backend.api.body_limit`` key on them).
MODELS_PATH = "/api/models"
DATASETS_PATH = "/api/datasets"
UPLOAD_PATHS = frozenset({MODELS_PATH, DATASETS_PATH})
#: Where each kind is listed: ``GET /api/models``; ``GET /api/datasets/uploaded`` (``GET /api/datasets`` is
#: the catalog of built-in data sets).
LIST_PATHS = {UploadKind.model: "", UploadKind.dataset: "/uploaded"}

Responses = dict[int | str, dict[str, Any]]
INVALID: Responses = {
    422: {"model": ValidationErrorBody, "description": "the file is refused; the message says why"}
}
NOT_FOUND: Responses = {404: {"model": ErrorBody, "description": "no such upload (or not in your projects)"}}
TOO_LARGE: Responses = {413: {"model": ErrorBody, "description": "the body is over the upload limit"}}
#: An upload's id in a path: decimal digits only, bounded to the id column.
UploadId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="the upload's id"), DECIMAL_ID]

models_router = APIRouter(prefix="/models", tags=["uploads"], dependencies=[Depends(current_user)])
datasets_router = APIRouter(prefix="/datasets", tags=["uploads"], dependencies=[Depends(current_user)])


@dataclass(frozen=True)
class UploadRequest:
    """What both upload routes receive besides their files: the request's session and settings, the
    answer (its status), the audit log, who uploads into which project, and the name and notes."""

    session: Session
    settings: Settings
    response: Response
    audit: AuditLog
    uploader: uploads.Uploader
    name: str
    notes: str


def upload_request(
    session: SessionDep,
    context: ContextDep,
    user: CurrentUser,
    audit: AuditDep,
    response: Response,
    name: Annotated[str, Form(max_length=200, description="default: the file's name")] = "",
    notes: Annotated[str, Form(max_length=10_000)] = "",
    project: Annotated[str | None, Form(max_length=100, description="name or id; default yours")] = None,
) -> UploadRequest:
    """The upload's form fields and caller, refused unless they may upload into the project.

    Raises:
        NotFound: no such project, or not theirs.
        Forbidden: a viewer there.
    """
    reference: str | int | None = project or None
    if isinstance(reference, str) and reference.isdigit():
        reference = int(reference)
    project_id = resolve_project(session, user, reference)
    role = user.role_in(project_id)
    if role is None or role is Role.viewer:
        raise Forbidden("viewers cannot upload to this project")
    uploader = uploads.Uploader(user.name, user.user_id, project_id)
    return UploadRequest(session, context.settings, response, audit, uploader, name, notes)


UploadDep = Annotated[UploadRequest, Depends(upload_request)]


def _plain_name(upload: UploadFile, default: str) -> str:
    """The file's own name without any directory a client put in it."""
    return PurePath((upload.filename or default).replace("\\", "/")).name or default


def _saved(upload: UploadFile, directory: Path, name: str) -> Path:
    path = directory / name
    with path.open("wb") as out:
        shutil.copyfileobj(upload.file, out, 1 << 20)
    return path


def _accept(
    upload: UploadRequest,
    kind: UploadKind,
    reader: str,
    files: list[Path],
    names: list[str],
    stored: Path,
    filename: str,
) -> UploadOut:
    """Store what the ingest subprocess accepts (the same bytes already stored: that row, with 200).

    Args:
        upload: the request.
        kind: model or dataset.
        reader: the subprocess's kind (``keras``, ``npz``, ``idx``).
        files / names: the received files and their names as uploaded.
        stored: the file that is stored (for IDX files, the .npz the subprocess writes there).
        filename: the stored file's name.
    """
    if stored.exists():  # known bytes need no second reading
        found = uploads.find_stored(
            upload.session, kind, upload.uploader.project_id, uploads.file_sha256(stored)
        )
        if found is not None:
            upload.response.status_code = status.HTTP_200_OK
            return uploads.upload_out(found, existing=True)
    out = stored if reader == "idx" else None
    inspected = inspect_upload(upload.settings, reader, files, names, out=out)
    item = uploads.store_upload(
        upload.session,
        kind,
        stored,
        filename=filename,
        name=upload.name,
        notes=upload.notes,
        summary=inspected.summary,
        uploader=upload.uploader,
    )
    if item.existing:
        upload.response.status_code = status.HTTP_200_OK
    else:
        upload.audit(
            "upload.create", f"{kind.value} {item.id}", project=upload.uploader.project_id, sha256=item.sha256
        )
    return item


STORED_ALREADY: Responses = {200: {"model": UploadOut, "description": "these bytes were stored already"}}


@models_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={**INVALID, **TOO_LARGE, **STORED_ALREADY},
    summary="Upload a Keras model (.keras)",
)
def upload_model(
    file: Annotated[UploadFile, File(description="a .keras file (model.save('name.keras'))")],
    upload: UploadDep,
) -> UploadOut:
    """Check the file in the ingest subprocess (allow-listed Keras layers only, safe-mode load, weights that
    match), store it by content hash, and return its id with the model read as a spec. The same bytes
    uploaded again answer 200 with the existing id."""
    filename = _plain_name(file, "model.keras")
    if not filename.lower().endswith(".keras"):
        raise InvalidInput(("body", "file"), f"a model is uploaded as a .keras file, not {filename!r}")
    with tempfile.TemporaryDirectory(prefix="prunelab-upload-") as directory:
        path = _saved(file, Path(directory), "upload.keras")
        return _accept(upload, UploadKind.model, "keras", [path], [filename], path, filename)


@datasets_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={**INVALID, **TOO_LARGE, **STORED_ALREADY},
    summary="Upload a data set (.npz, or MNIST-style IDX files)",
)
def upload_dataset(
    file: Annotated[
        list[UploadFile],
        File(description="one .npz (x_train, y_train, x_test, y_test) or 2 or 4 IDX files (.gz or raw)"),
    ],
    upload: UploadDep,
) -> UploadOut:
    """Check the arrays in the ingest subprocess (headers and sizes before loading, no pickle, numeric
    dtypes, no NaN or infinity), store them by content hash, and return the id with shapes, dtypes and the
    class count or value range. IDX files are stored as the .npz made from them (one pair is split 5:1
    into train and test)."""
    names = [_plain_name(part, f"file{index}") for index, part in enumerate(file)]
    is_npz = len(file) == 1 and names[0].lower().endswith(".npz")
    if not is_npz and len(file) not in (2, 4):
        raise InvalidInput(("body", "file"), "send one .npz file, or 2 or 4 MNIST-style IDX files")
    with tempfile.TemporaryDirectory(prefix="prunelab-upload-") as directory:
        folder = Path(directory)
        paths = [_saved(part, folder, f"part{index}") for index, part in enumerate(file)]
        if is_npz:
            return _accept(upload, UploadKind.dataset, "npz", paths, names, paths[0], names[0])
        filename = f"{PurePath(names[0]).name.split('.')[0]}.npz"
        return _accept(upload, UploadKind.dataset, "idx", paths, names, folder / "idx.npz", filename)


def _routes(router: APIRouter, kind: UploadKind) -> None:
    """The list, read, delete and download routes of one kind."""
    label = kind.value

    @router.get(LIST_PATHS[kind], summary=f"List uploaded {label}s")
    def list_all(session: SessionDep, user: CurrentUser) -> list[UploadOut]:
        """The uploads of this kind in the caller's projects, newest first."""
        return uploads.list_uploads(session, kind, user)

    @router.get("/{upload_id}", responses=NOT_FOUND, summary=f"One uploaded {label}")
    def get_one(upload_id: UploadId, session: SessionDep, user: CurrentUser) -> UploadDetail:
        return uploads.get_upload(session, kind, upload_id, user)

    @router.delete(
        "/{upload_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        responses={**NOT_FOUND, 409: {"model": ErrorBody, "description": "an experiment uses it"}},
        summary=f"Delete an uploaded {label}",
    )
    def delete_one(upload_id: UploadId, session: SessionDep, user: CurrentUser, audit: AuditDep) -> Response:
        uploads.delete_upload(session, kind, upload_id, user)
        audit("upload.delete", f"{label} {upload_id}")
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.get(
        "/{upload_id}/file",
        response_class=Response,
        responses={
            **NOT_FOUND,
            200: {
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
                "description": "the stored file",
            },
        },
        summary=f"Download an uploaded {label}",
    )
    def download(upload_id: UploadId, session: SessionDep, user: CurrentUser) -> Response:
        stored = uploads.upload_file(session, kind, upload_id, user)
        return Response(
            content=stored.content,
            media_type="application/octet-stream",
            headers={
                "Content-Disposition": content_disposition(stored.filename),
                "ETag": f'"{stored.sha256}"',
            },
        )


_routes(models_router, UploadKind.model)
_routes(datasets_router, UploadKind.dataset)
