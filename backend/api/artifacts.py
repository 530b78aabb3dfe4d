"""Artifact download, by id only (a client never names a path)."""

from __future__ import annotations

import re
from urllib.parse import quote

from fastapi import APIRouter, Response

from backend.api.deps import ArtifactId, SessionDep
from backend.schemas import ErrorBody
from backend.service import queries

router = APIRouter(prefix="/artifacts", tags=["artifacts"])

_UNSAFE = re.compile(r'[\x00-\x1f\x7f"\\/;]')


def content_disposition(filename: str) -> str:
    """An ``attachment`` header value naming the file safely (RFC 6266, UTF-8 via ``filename*``).

    Args:
        filename: the stored file name; path separators, quotes and control characters are replaced.
    """
    safe = _UNSAFE.sub("_", filename).strip(". ") or "artifact"
    ascii_name = safe.encode("ascii", "replace").decode("ascii").replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(safe, safe='')}"


@router.get(
    "/{artifact_id}",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "the file"},
        404: {"model": ErrorBody, "description": "no such artifact"},
    },
    summary="Download an artifact",
)
def download_artifact(artifact_id: ArtifactId, session: SessionDep) -> Response:
    """The stored bytes, named by the artifact's row (``Content-Disposition``), with its SHA-256 as ETag."""
    artifact = queries.artifact_file(session, artifact_id)
    return Response(
        content=artifact.content,
        media_type=artifact.media_type,
        headers={
            "Content-Disposition": content_disposition(artifact.filename),
            "ETag": f'"{artifact.sha256}"',
            "X-Content-Type-Options": "nosniff",
        },
    )
