"""The one place where failures become HTTP answers.

Domain errors (``backend.service.errors``) map to a status by type; request validation errors become
422 answers whose ``loc`` names the field as the client wrote it (pydantic's tags of discriminated
unions, e.g. the ``dense`` in ``model.layers.0.dense.units``, are dropped).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from backend.schemas import ErrorBody, ValidationErrorBody, ValidationIssue
from backend.service.errors import Conflict, DomainError, InvalidInput, NotFound, QueueUnavailable
from prunespec.spec import written_location

#: HTTP status of each domain failure (a subclass maps as its nearest listed base).
STATUS_BY_ERROR: dict[type[DomainError], int] = {
    NotFound: 404,
    Conflict: 409,
    InvalidInput: 422,
    QueueUnavailable: 503,
}
#: Why FastAPI could not read a JSON body it did not call malformed (it answers 400 for these).
UNREADABLE_BODY = (
    "the body is not JSON this API can read: send UTF-8 text nested at most a few hundred levels"
)
#: The methods a 405's ``Allow`` may list.
HTTP_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
#: Parts of a request FastAPI names first in an error location.
REQUEST_PARTS = ("body", "query", "path", "header", "cookie")


def user_location(loc: Sequence[str | int], body: Any) -> list[str | int]:
    """An error location with the union tags the client never wrote removed.

    Args:
        loc: FastAPI's location, e.g. ``("body", "spec", "model", "layers", 0, "dense", "units")``.
        body: the parsed request body (the locations of other request parts are returned unchanged).

    Returns:
        e.g. ``["body", "spec", "model", "layers", 0, "units"]``.
    """
    if not loc or loc[0] != "body":
        return list(loc)
    return ["body", *written_location(loc[1:], body)]


def _issue(loc: Sequence[str | int], message: str, kind: str) -> ValidationIssue:
    inside = loc[1:] if loc and loc[0] in REQUEST_PARTS else loc
    return ValidationIssue(
        loc=list(loc),
        field=".".join(str(part) for part in inside),
        msg=message.removeprefix("Value error, "),
        type=kind,
    )


def _unprocessable(issues: list[ValidationIssue]) -> JSONResponse:
    return JSONResponse(ValidationErrorBody(detail=issues).model_dump(mode="json"), status_code=422)


def status_for(error: DomainError) -> int:
    """The HTTP status of a domain error (500 for one this module does not know)."""
    for kind in type(error).__mro__:
        if kind in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[kind]
    return 500


async def domain_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    """A domain error as ``{"detail": message, "code": ...}`` with its status (422s as validation)."""
    assert isinstance(exc, DomainError)
    if isinstance(exc, InvalidInput):
        return _unprocessable([_issue(exc.field, exc.message, exc.code)])
    body = ErrorBody(detail=exc.message, code=exc.code)
    return JSONResponse(body.model_dump(mode="json"), status_code=status_for(exc))


async def validation_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    """A request that failed validation (malformed JSON included) as 422 naming every bad field."""
    assert isinstance(exc, RequestValidationError)
    issues = [
        _issue(user_location(error["loc"], exc.body), str(error["msg"]), str(error["type"]))
        for error in exc.errors()
    ]
    return _unprocessable(issues)


def allowed_methods(request: Request) -> list[str]:
    """The methods some route of the app answers at the request's path, sorted (for ``Allow``).

    Each method is tried against the app's routes as the router would (``matches``), so routes of
    included routers count without reading the router's internals.
    """
    allowed = []
    for method in HTTP_METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


async def http_error_handler(request: Request, exc: Exception) -> Response:
    """FastAPI's HTTP errors, with two corrections: a body FastAPI could not decode (not UTF-8, nested
    past the JSON parser's recursion limit) is a 422 with a message, not a bare 400; and a 405's
    ``Allow`` lists the methods of every route at the path (Starlette names only the first route's)."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError | RecursionError | ValueError):
        return _unprocessable([_issue(["body"], UNREADABLE_BODY, "body_unreadable")])
    if exc.status_code == 405:
        methods = allowed_methods(request)
        if methods:
            exc = StarletteHTTPException(
                405, exc.detail, headers={**(exc.headers or {}), "Allow": ", ".join(methods)}
            )
    return await http_exception_handler(request, exc)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on an app."""
    app.add_exception_handler(DomainError, domain_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
