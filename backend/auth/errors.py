"""Authentication and permission failures, and how they are answered.

``NotSignedIn`` is 401 on the API (with ``WWW-Authenticate: Bearer``) and a 303 to ``/signin?next=…``
on a dashboard page; ``Forbidden`` is 403; ``TooManyRequests`` is 429 with ``Retry-After``.
"""

from __future__ import annotations

import math
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from backend.schemas import API_PREFIX, ErrorBody
from backend.service.errors import DomainError


class NotSignedIn(DomainError):
    """The request carries no valid API token or session."""

    code = "not_signed_in"


class Forbidden(DomainError):
    """The caller is signed in but their role does not allow this."""

    code = "forbidden"


class TooManyRequests(DomainError):
    """Too many attempts; ``retry_after`` seconds until the next one is accepted.

    Args:
        message: what was limited.
        retry_after: seconds to wait.
    """

    code = "too_many_requests"

    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = max(1, math.ceil(retry_after))


def signin_location(request: Request) -> str:
    """``/signin?next=<the page asked for>`` (only a local path is ever put in ``next``)."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/signin?next=" + quote(target, safe="")


def _body(exc: DomainError) -> dict[str, str]:
    return ErrorBody(detail=exc.message, code=exc.code).model_dump(mode="json")


async def auth_error_handler(request: Request, exc: Exception) -> Response:
    """401/303, 403 or 429 for an authentication failure."""
    if isinstance(exc, NotSignedIn):
        if not request.url.path.startswith(API_PREFIX + "/") and request.method in ("GET", "HEAD"):
            return RedirectResponse(signin_location(request), status_code=303)
        return JSONResponse(_body(exc), status_code=401, headers={"WWW-Authenticate": "Bearer"})
    if isinstance(exc, TooManyRequests):
        return JSONResponse(_body(exc), status_code=429, headers={"Retry-After": str(exc.retry_after)})
    assert isinstance(exc, DomainError)
    return JSONResponse(_body(exc), status_code=403)


def install_auth_errors(app: FastAPI) -> None:
    """Answer the failures above (they take precedence over the generic domain error handler)."""
    for kind in (NotSignedIn, Forbidden, TooManyRequests):
        app.add_exception_handler(kind, auth_error_handler)
