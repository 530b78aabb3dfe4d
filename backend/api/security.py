"""What a request from outside may do: no cross-site request may change anything.

One ASGI middleware, :class:`RequestGuard`, in front of every route:

- **Host names.** The ``Host`` header must name a configured host (``Settings.allowed_hosts`` plus the
  address the server binds; any port), else 400. A DNS-rebinding page, whose own name resolves to
  127.0.0.1, is therefore refused by the default local server.
- **Same origin for changes.** A POST, PUT, PATCH or DELETE whose ``Origin`` (or, without one,
  ``Referer``) is present and is not this server's own scheme, host and port is refused with 403.
  Clients that send neither (the CLI, scripts, curl) are not browsers and pass. Behind a TLS proxy
  the request's scheme must be the client's (uvicorn's ``--proxy-headers`` with the proxy's address in
  ``--forwarded-allow-ips``), or the browser's ``https`` origin will not match.
- **JSON only.** Every POST, PUT and PATCH must declare a JSON body (``application/json`` or a
  ``+json`` type), body or not, so that a cross-site form or "simple" request (which can only send
  ``text/plain``, ``multipart/form-data`` or ``application/x-www-form-urlencoded``, and without a
  preflight) never reaches a route: 415 otherwise. The one exception is the spec parser
  (``POST /api/specs/parse``), a pure function that changes nothing, which also takes YAML text; the
  Origin check applies to it all the same.
- **Uploads, the one multipart exception.** ``multipart/form-data`` is accepted on the upload routes only
  (``POST /api/models``, ``POST /api/datasets``; :data:`MULTIPART_PATHS`), never on the media type alone:
  the request must pass the same-origin check above (a browser always sends ``Origin`` on such a POST, so
  a cross-site form is refused with 403) *and*, when it comes with the session cookie rather than a bearer
  token, carry the ``X-CSRF-Token`` header, which a cross-site form cannot set (the value is then checked
  against the session by ``backend.auth.deps``). Bearer tokens are never sent by a browser on its own,
  so a request that carries one is not cross-site. JSON stays the rule everywhere else: no cross-site
  request may change anything.
- **Headers on every answer.** ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: same-origin``,
  ``X-Frame-Options: DENY`` and a Content-Security-Policy (the pages' policy, which forbids framing;
  ``/docs`` and ``/redoc`` get :func:`docs_policy`, which lets the API explorers run their start-up
  script; their files come from this server).
- **Dataset paths.** Specs validated while the request is served confine their ``dataset.path`` to the
  server's data directories (``prunespec.datapaths.confined_to``).

Refusals are ``ErrorBody`` JSON with a short message; they name nothing about the server.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.datastructures import Headers, MutableHeaders
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.api.docs import DOCS_URL, REDOC_URL, swagger_html
from backend.api.pages import CONTENT_SECURITY_POLICY, YAML_MEDIA_TYPES
from backend.schemas import API_PREFIX, ErrorBody
from backend.settings import Settings
from prunespec import datapaths

#: Methods that may change something; they must come from this server's own pages (or no browser).
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Methods that carry a body and must declare it as JSON.
WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
#: Routes that also take these non-JSON media types (pure functions that change nothing).
EXTRA_MEDIA_TYPES: dict[str, tuple[str, ...]] = {f"{API_PREFIX}/specs/parse": YAML_MEDIA_TYPES}
#: Paths that also take ``multipart/form-data`` (file uploads), under the conditions in the module docstring.
MULTIPART_PATHS = frozenset({f"{API_PREFIX}/models", f"{API_PREFIX}/datasets"})
MULTIPART = "multipart/form-data"
#: The header a browser session's state-changing request carries its CSRF token in.
CSRF_HEADER = "x-csrf-token"
#: Bound addresses that stand for "every interface": they name no host a client would send.
WILDCARD_ADDRESSES = frozenset({"", "0.0.0.0", "::", "[::]"})
DOCS_PATHS = frozenset({DOCS_URL, REDOC_URL})
DEFAULT_PORTS = {"http": 80, "https": 443}
#: Sent with every answer (the Content-Security-Policy only where the route set none).
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def _inline_script_hashes(html: str) -> list[str]:
    """CSP hash sources of a page's inline scripts."""
    hashes = []
    for body in re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL):
        digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode("ascii")
        hashes.append(f"'sha256-{digest}'")
    return hashes


def docs_policy(app: FastAPI) -> str:
    """The Content-Security-Policy of ``/docs`` and ``/redoc``: everything from this server only.

    Scripts and styles from this server (``backend.api.docs`` serves the explorers' files), Swagger
    UI's one inline start-up script (by its hash, computed from the page this app serves), ReDoc's
    inline style and its web worker; never framed.

    Args:
        app: the app whose Swagger UI page is hashed (its title, OpenAPI URL and UI parameters).
    """
    html = bytes(swagger_html(app).body).decode("utf-8")
    scripts = " ".join(["'self'", *_inline_script_hashes(html)])
    return "; ".join(
        (
            "default-src 'self'",
            f"script-src {scripts}",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self' data:",
            "worker-src 'self' blob:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def _bracketed(host: str) -> str:
    """An IPv6 address in brackets, as a Host header writes it; other names unchanged (lower case)."""
    host = host.strip().lower()
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def trusted_hosts(settings: Settings) -> frozenset[str]:
    """The host names this server answers to: ``settings.allowed_hosts`` and the bound address.

    Args:
        settings: ``allowed_hosts`` and ``host``.

    Returns:
        Lower-case names, IPv6 addresses in brackets; ``*`` when any host is allowed.
    """
    hosts = {_bracketed(host) for host in settings.allowed_hosts}
    if settings.host.strip() not in WILDCARD_ADDRESSES:
        hosts.add(_bracketed(settings.host))
    return frozenset(hosts)


def split_host(value: str) -> tuple[str, int | None] | None:
    """A Host header's name (lower case, IPv6 in brackets) and port, or None when it is malformed."""
    value = value.strip().lower()
    match = re.fullmatch(r"(\[[0-9a-f:.]+\]|[^\[\]:/@\s]+)(?::(\d{1,5}))?", value)
    if match is None:
        return None
    return match.group(1), int(match.group(2)) if match.group(2) else None


def _origin_of(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an Origin or Referer value, or None when it names no http(s) origin."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.scheme, _bracketed(parts.hostname), port or DEFAULT_PORTS[parts.scheme]


def media_type(headers: Headers) -> str:
    """The request's media type, lower case, without parameters ('' when there is none)."""
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def is_json(kind: str) -> bool:
    """``application/json`` or a ``+json`` type such as ``application/merge-patch+json``."""
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


class RequestGuard:
    """The ASGI middleware described in this module's docstring.

    Args:
        app: the application it guards.
        hosts: the host names allowed in ``Host`` (:func:`trusted_hosts`); ``*`` allows any.
        data_dirs: the directories specs' dataset paths are confined to.
        docs_csp: the Content-Security-Policy of ``/docs`` and ``/redoc``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        hosts: Iterable[str],
        data_dirs: Sequence[Path],
        docs_csp: str,
        routes: Sequence[BaseRoute] = (),
    ):
        self.app = app
        self.routes = routes
        self.hosts = frozenset(hosts)
        self.data_dirs = tuple(data_dirs)
        self.docs_csp = docs_csp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self.refusal(scope)
        csp = self.docs_csp if scope["path"] in DOCS_PATHS else CONTENT_SECURITY_POLICY

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                if "content-security-policy" not in headers:
                    headers["Content-Security-Policy"] = csp
            await send(message)

        if refusal is not None:
            status, detail, code = refusal
            await _answer(send_with_headers, status, detail, code)
            return
        with datapaths.confined_to(self.data_dirs):
            await self.app(scope, receive, send_with_headers)

    def refusal(self, scope: Scope) -> tuple[int, str, str] | None:
        """Why a request is refused (status, message, code), or None when it may pass."""
        headers = Headers(scope=scope)
        host = split_host(headers.get("host", ""))
        if host is None or ("*" not in self.hosts and host[0] not in self.hosts):
            return 400, "this server does not answer to that host name", "host_not_allowed"
        method = scope["method"].upper()
        if method not in STATE_CHANGING:
            return None
        claimed = headers.get("origin") or headers.get("referer") or None
        if claimed is not None:
            scheme = str(scope.get("scheme", "http"))
            own = (scheme, host[0], host[1] or DEFAULT_PORTS.get(scheme, 80))
            if _origin_of(claimed) != own:
                return (
                    403,
                    "requests that change something must come from this server's own pages",
                    ("cross_origin"),
                )
        if method in WITH_BODY and self.routed(scope):
            kind = media_type(headers)
            if kind == MULTIPART and scope["path"] in MULTIPART_PATHS:
                return _multipart_refusal(headers)
            allowed = EXTRA_MEDIA_TYPES.get(scope["path"], ())
            if not (is_json(kind) or kind in allowed):
                wanted = " or ".join(["application/json", *allowed])
                sent = f"not {kind}" if kind else "no Content-Type was sent"
                return 415, f"send the request body as {wanted} ({sent})", "unsupported_media_type"
        return None

    def routed(self, scope: Scope) -> bool:
        """True when a route takes this path and method; otherwise the router answers 404 or 405 (with
        its ``Allow``) and nothing can change, so the body's media type does not matter."""
        if not self.routes:
            return True
        return any(route.matches(scope)[0] == Match.FULL for route in self.routes)


def _multipart_refusal(headers: Headers) -> tuple[int, str, str] | None:
    """Why an upload (multipart, same-origin already checked) is refused: a cookie session without the
    CSRF header; None when it may pass (a bearer token, or the header present)."""
    if "authorization" in headers or CSRF_HEADER in headers or "cookie" not in headers:
        return None
    return 403, "uploads from the browser must carry the X-CSRF-Token header; reload the page", "csrf_missing"


async def _answer(send: Send, status: int, detail: str, code: str) -> None:
    """A complete ``ErrorBody`` JSON response."""
    body = json.dumps(ErrorBody(detail=detail, code=code).model_dump(mode="json")).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode("ascii")),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def install_security(app: FastAPI, settings: Settings) -> None:
    """Put :class:`RequestGuard` in front of the app's routes.

    Args:
        app: the app (its routes and docs settings already configured).
        settings: ``allowed_hosts``, ``host`` and ``data_dir``.
    """
    app.add_middleware(
        RequestGuard,
        hosts=trusted_hosts(settings),
        data_dirs=settings.data_dirs(),
        docs_csp=docs_policy(app),
        routes=app.router.routes,  # the router's own list: routes included after this call count too
    )
