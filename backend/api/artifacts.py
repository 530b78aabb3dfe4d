"""Artifact download, by id only (a client never names a path)."""

from __future__ import annotations

import re
from urllib.parse import quote

from fastapi import APIRouter, Depends, Response

from backend.api.deps import SessionDep
from backend.auth.deps import VisibleArtifactId, current_user
from backend.schemas import ErrorBody
from backend.service import queries
from backend.service.benchmarks import TFLITE_MEDIA_TYPE
from backend.service.recording import KERAS_MEDIA_TYPE

router = APIRouter(prefix="/artifacts", tags=["artifacts"], dependencies=[Depends(current_user)])

#: The content types an artifact is sent as, as the OpenAPI document declares them; a stored media type
#: outside these (older rows, anything unexpected) is sent as plain bytes.
GENERIC_MEDIA_TYPE = "application/octet-stream"
ARTIFACT_MEDIA_TYPES = (KERAS_MEDIA_TYPE, TFLITE_MEDIA_TYPE, GENERIC_MEDIA_TYPE)
_UNSAFE = re.compile(r'[\x00-\x1f\x7f"\\/;]')


def content_disposition(filename: str) -> str:
    """An ``attachment`` header value naming the file safely (RFC 6266, UTF-8 via ``filename*``).

    Args:
        filename: the stored file name; path separators, quotes and control characters are replaced.
    """
    safe = _UNSAFE.sub("_", filename).strip(". ") or "artifact"
    ascii_name = safe.encode("ascii", "replace").decode("ascii").replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(safe, safe='')}"


def sent_media_type(stored: str) -> str:
    """The content type an artifact stored as ``stored`` is sent as: one of :data:`ARTIFACT_MEDIA_TYPES`."""
    return stored if stored in ARTIFACT_MEDIA_TYPES else GENERIC_MEDIA_TYPE


@router.get(
    "/{artifact_id}",
    response_class=Response,
    responses={
        200: {
            "content": {
                media_type: {"schema": {"type": "string", "format": "binary"}}
                for media_type in ARTIFACT_MEDIA_TYPES
            },
            "description": "the file: a Keras model (.keras), a TFLite model (.tflite), or other bytes",
        },
        404: {"model": ErrorBody, "description": "no such artifact"},
    },
    summary="Download an artifact",
)
def download_artifact(artifact_id: VisibleArtifactId, session: SessionDep) -> Response:
    """The stored bytes, named by the artifact's row (``Content-Disposition``), with its SHA-256 as ETag."""
    artifact = queries.artifact_file(session, artifact_id)
    return Response(
        content=artifact.content,
        media_type=sent_media_type(artifact.media_type),
        headers={
            "Content-Disposition": content_disposition(artifact.filename),
            "ETag": f'"{artifact.sha256}"',
            "X-Content-Type-Options": "nosniff",
        },
    )
