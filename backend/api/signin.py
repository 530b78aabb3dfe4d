"""Signing in and out: the sign-in page, the one-time link ``prunelab serve`` prints, and the JSON
routes the page calls. A session is two cookies: ``prunelab_session`` (HttpOnly) and ``prunelab_csrf``
(readable by the page, echoed in ``X-CSRF-Token`` on every change; ``backend.auth.deps``)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Body, Query, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, Field

from backend.api.deps import ContextDep, SessionDep
from backend.api.pages import PAGE_HEADERS, page_html
from backend.auth import audit
from backend.auth.deps import CSRF_COOKIE, SESSION_COOKIE, ThrottlesDep, client_address, identity_of
from backend.auth.errors import NotSignedIn, TooManyRequests
from backend.auth.sessions import end_session, open_session
from backend.auth.users import use_token
from backend.models import User
from backend.schemas import ErrorBody, Owner, RequestBody
from backend.settings import Settings

page_router = APIRouter(include_in_schema=False)
api_router = APIRouter(tags=["auth"])


class SignIn(RequestBody):
    """A token to sign in with; ``name`` (optional) is the user it should belong to."""

    token: str = Field(min_length=1, max_length=200)
    name: Owner | None = None


class SignedIn(BaseModel):
    """Who signed in."""

    name: str
    role: str


def safe_next(target: str | None) -> str:
    """``target`` when it is a path on this server, else ``/`` (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/"


def _set_cookies(
    request: Request, response: Response, session: SessionDep, user: User, settings: Settings
) -> None:
    opened = open_session(session, user, settings.session_days)
    secure = request.url.scheme == "https"
    for name, value, http_only in (
        (SESSION_COOKIE, opened.secret, True),
        (CSRF_COOKIE, opened.csrf_token, False),
    ):
        response.set_cookie(
            name,
            value,
            max_age=opened.max_age_seconds,
            httponly=http_only,
            samesite="lax",
            secure=secure,
            path="/",
        )


def _check_lock(limits: ThrottlesDep, address: str, name: str | None) -> None:
    for window, key, whom in (
        (limits.signin_by_address, address, "from your address"),
        (limits.signin_by_user, name or "", f"for {name}"),
    ):
        if key and (wait := window.wait(key)) > 0:
            raise TooManyRequests(
                f"sign-in is locked after too many failed attempts {whom}; try again in {wait:.0f} s", wait
            )


def _sign_in(
    request: Request,
    session: SessionDep,
    limits: ThrottlesDep,
    secret: str,
    kind: str | None,
    name: str | None,
) -> User:
    """The token's user, or a counted and audited failure."""
    address = client_address(request)
    _check_lock(limits, address, name)
    use = use_token(session, secret, kind)
    if use is None or (name is not None and use.user.name != name):
        limits.signin_by_address.add(address)
        if name:
            limits.signin_by_user.add(name)
        audit.record(session, name, "signin.failure", "", address, kind=kind or "any")
        session.commit()
        raise NotSignedIn("that token is unknown, revoked or already used")
    limits.signin_by_address.clear(address)
    audit.record(session, use.user.name, "signin", f"user {use.user.name}", address, kind=kind or "any")
    return use.user


@page_router.get("/signin")
def signin_page(
    request: Request,
    session: SessionDep,
    context: ContextDep,
    limits: ThrottlesDep,
    token: Annotated[str | None, Query(max_length=200)] = None,
    next_page: Annotated[str | None, Query(alias="next", max_length=2000)] = None,
) -> Response:
    """The sign-in page; with ``?token=`` (the one-time link), signs in and goes on to ``next``."""
    if token is None:
        return HTMLResponse(page_html("signin"), headers=PAGE_HEADERS)
    try:
        user = _sign_in(request, session, limits, token, "signin", None)
    except NotSignedIn:  # a spent or unknown link: the plain sign-in page (the token stays out of `next`)
        return RedirectResponse("/signin?next=" + quote(safe_next(next_page), safe=""), status_code=303)
    response = RedirectResponse(safe_next(next_page), status_code=status.HTTP_303_SEE_OTHER)
    _set_cookies(request, response, session, user, context.settings)
    return response


@api_router.post(
    "/signin",
    responses={
        401: {"model": ErrorBody, "description": "the token is not valid"},
        429: {"model": ErrorBody, "description": "sign-in is locked for a while"},
    },
    summary="Sign in (sets the session cookies)",
)
def sign_in(
    body: Annotated[SignIn, Body()],
    request: Request,
    response: Response,
    session: SessionDep,
    context: ContextDep,
    limits: ThrottlesDep,
) -> SignedIn:
    """Exchange an API token (or a one-time sign-in token) for a browser session."""
    user = _sign_in(request, session, limits, body.token, None, body.name)
    _set_cookies(request, response, session, user, context.settings)
    return SignedIn(name=user.name, role=identity_of(session, user, "session").role.value)


@api_router.post("/signout", status_code=status.HTTP_204_NO_CONTENT, summary="Sign out")
def sign_out(request: Request, session: SessionDep) -> Response:
    """End the browser's session and clear its cookies (harmless when not signed in)."""
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        end_session(session, secret)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(name, path="/")
    return response
